//! What the fan-out scenario prints: each phase as it ends, and its section
//! of `BENCHMARKS.md`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::{AREA, FanoutArgs, Phase};

fn ms(h: &Option<Histogram<u64>>, q: f64) -> String {
    match h {
        Some(h) if !h.is_empty() => format!("{:.1} ms", h.value_at_quantile(q) as f64 / 1000.0),
        _ => "–".into(),
    }
}

fn max_ms(h: &Option<Histogram<u64>>) -> String {
    match h {
        Some(h) if !h.is_empty() => format!("{:.1} ms", h.max() as f64 / 1000.0),
        _ => "–".into(),
    }
}

pub(super) fn print_phase(name: &str, p: &Phase) {
    println!(
        "{name}: {} published, {} deliveries in {:.1} s, gaps {}, resyncs {}, closed {:?}, incomplete {}, p50 {} p99 {} max {}, to last p99 {}, cpu {:.1} s, write syscalls {:?}, frames/flush {:?}",
        p.published,
        p.deliveries,
        p.seconds,
        p.gaps,
        p.resyncs,
        p.closed,
        p.incomplete,
        ms(&p.latency, 0.5),
        ms(&p.latency, 0.99),
        max_ms(&p.latency),
        ms(&p.to_last, 0.99),
        p.cpu_seconds,
        p.write_syscalls,
        p.frames_per_flush,
    );
}

pub(super) fn markdown(
    args: &FanoutArgs,
    held: usize,
    connect_seconds: f64,
    per_connection_kib: f64,
    phases: [(&str, &Phase); 3],
    failures: u64,
) -> String {
    let bus = match &args.redis {
        Some(_) => "Redis broker (one instance, `REDIS_URL`)",
        None => "in-process bus",
    };
    let mut s = String::new();
    let _ = writeln!(s, "## Fan-out: one anpi instance, {bus}\n");
    let _ = writeln!(s, "{}.\n", crate::report::machine());
    let redis_flag = match &args.redis {
        Some(url) => format!(" --redis {url}"),
        None => String::new(),
    };
    let _ = writeln!(
        s,
        "Command: `loadtest/run-fanout` (= `anpi-loadtest fanout --hold {} --subscribers {} --broadcasts {} --rate {} --burst {} --burst-every-ms {} --seconds {}{redis_flag}`).\n",
        args.hold,
        args.subscribers,
        args.broadcasts,
        args.rate,
        args.burst,
        args.burst_every_ms,
        args.seconds
    );
    let _ = writeln!(
        s,
        "Every subscriber is a real WebSocket client subscribed to `{AREA}` (Nanao, 112 shelters); every update is an office's real API call — `PATCH /v1/shelters/{{id}}`, or in the burst phase `PUT /v1/municipalities/172022/shelter-status` with a spreadsheet — written to SQLite and published to the area and each shelter's cell. Latency is from the broker stamping the event to the subscriber reading it (wall clock, same machine).\n"
    );
    let _ = writeln!(
        s,
        "**Hold**: {held} connections opened in {connect_seconds:.1} s; server memory **{per_connection_kib:.1} KiB per connection** (RSS growth / connections, after each got its 112-shelter snapshot; target ≤ 16 KiB).\n"
    );
    let _ = writeln!(
        s,
        "| phase | updates | deliveries/s | p50 | p99 | max | p99 to the last subscriber | gaps | resyncs / closed | frames per write syscall | server CPU s per M deliveries |\n|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for (name, p) in phases {
        let how = match name {
            "broadcast" => format!("{} × 1/s to {}", p.published, args.subscribers),
            "steady" => format!("{}/s for {} s", args.rate, args.seconds),
            _ => format!(
                "uploads of {} shelters every {} ms for {} s",
                args.burst, args.burst_every_ms, args.seconds
            ),
        };
        let per_write = match (p.write_syscalls, p.deliveries) {
            (Some(w), d) if w > 0 => format!("{:.1}", d as f64 / w as f64),
            _ => "–".into(),
        };
        let cpu = if p.deliveries > 0 {
            format!("{:.2}", p.cpu_seconds / (p.deliveries as f64 / 1e6))
        } else {
            "–".into()
        };
        let _ = writeln!(
            s,
            "| {name} | {how} | {:.0} | {} | {} | {} | {} | {} | {} / {} | {per_write} | {cpu} |",
            p.deliveries as f64 / p.seconds,
            ms(&p.latency, 0.5),
            ms(&p.latency, 0.99),
            max_ms(&p.latency),
            ms(&p.to_last, 0.99),
            p.gaps,
            p.resyncs,
            p.closed.values().sum::<u64>(),
        );
    }
    let burst = phases[2].1;
    let _ = writeln!(
        s,
        "\nDeliveries/s: every delivery of the phase over the time from its first publish to its last delivery. Frames per write syscall: deliveries ÷ the server's `write`, `writev`, `sendto` and `sendmsg` calls during the burst phase (`perf stat`; HTTP answers and SQLite writes included, so it is a lower bound); the server's own `anpi_live_frames_per_flush` averaged {}. Deliveries missing at the end: {}; office updates that failed: {failures}.\n",
        burst
            .frames_per_flush
            .map(|f| format!("{f:.1}"))
            .unwrap_or_else(|| "–".into()),
        phases
            .iter()
            .map(|(_, p)| p.expected.saturating_sub(p.deliveries))
            .sum::<u64>(),
    );
    let _ = writeln!(
        s,
        "Caveats: two cores shared by the server, the subscriber processes and the office client; loopback only."
    );
    s
}
