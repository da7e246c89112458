//! The peers benchmark's section of `BENCHMARKS.md`: median and range over
//! the repetitions, the hold and phase tables, and the targets
//! checked from the medians.

use std::fmt::Write as _;

use super::peer::PeerKind;
use super::scenarios::{Scenario, Step};
use super::{Measured, PeersArgs, Repetition};

pub(super) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Median and range of a value over the repetitions.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Some(Spread {
            median,
            low: v[0],
            high: v[v.len() - 1],
        })
    }

    fn show(&self, decimals: usize, unit: &str) -> String {
        if self.low == self.high {
            format!("{:.*}{unit}", decimals, self.median)
        } else {
            format!(
                "{:.*}{unit} ({:.*}–{:.*})",
                decimals, self.median, decimals, self.low, decimals, self.high
            )
        }
    }
}

fn show(spread: Option<Spread>, decimals: usize, unit: &str) -> String {
    spread.map_or("–".to_owned(), |s| s.show(decimals, unit))
}

/// The phases at one step over all repetitions (a repetition that stopped
/// stepping earlier has none).
fn at_step(reps: &[Repetition], step: usize) -> Vec<&Measured> {
    reps.iter().filter_map(|r| r.phases.get(step)).collect()
}

/// Median deliveries/s of the highest step every repetition held unsaturated.
fn best_held(reps: &[Repetition], steps: usize) -> Option<(usize, f64)> {
    (0..steps).rev().find_map(|i| {
        let phases = at_step(reps, i);
        (phases.len() == reps.len() && phases.iter().all(|m| !m.saturated())).then(|| {
            let spread = Spread::of(phases.iter().map(|m| m.deliveries_per_second()));
            (i, spread.map_or(0.0, |s| s.median))
        })
    })
}

pub(super) fn markdown(args: &PeersArgs, results: &[(PeerKind, Vec<Repetition>)]) -> String {
    let mut s = String::new();
    let steps = args.steps();
    let _ = writeln!(
        s,
        "## Peers, {}: {} subscribers, {}-byte payloads\n",
        args.scenario.title(),
        args.subscribers(),
        args.bytes
    );
    let _ = writeln!(s, "{}.\n", crate::report::machine());
    let peers: Vec<String> = args
        .peers
        .iter()
        .filter_map(|p| clap::ValueEnum::to_possible_value(p).map(|v| v.get_name().to_owned()))
        .collect();
    let rates: Vec<String> = args.rates.iter().map(f64::to_string).collect();
    let _ = writeln!(
        s,
        "Command: `anpi-loadtest peers --scenario {} --peers {} --subscribers {} --bytes {} --rates {} --warmup {} --seconds {} --repetitions {}{}` (peers from `loadtest/peers/install`; all of it: `loadtest/run-all`).\n",
        args.scenario.name(),
        peers.join(","),
        args.subscribers(),
        args.bytes,
        rates.join(","),
        args.warmup,
        args.seconds,
        args.repetitions,
        args.ceiling
            .map(|c| format!(" --ceiling {c:.0}"))
            .unwrap_or_default(),
    );
    if args.scenario == Scenario::Hold {
        let _ = writeln!(
            s,
            "Each peer runs as two instances on one Redis, half the subscribers on each; nothing is published. Memory is the servers' resident size after the hold minus before the first connection, per connection.\n"
        );
    } else {
        let _ = writeln!(
            s,
            "Each peer runs as two instances on one Redis, half the subscribers on each, the publisher posting to the first over HTTP, one message after another (in S3 the ten of a burst at once, as from ten publishers). Every repetition starts the peers afresh; the peers take turns within a repetition. Per phase: {} s warm-up (not counted), {} s measured. Values are the median over {} repetitions, the range in brackets. Latency runs from the publisher's stamp to the subscriber's receipt; \"to the last\" is, per message, the latest of its deliveries. CPU is the servers' plus Redis's, from /proc; write syscalls (`write`, `writev`, `sendto`, `sendmsg` of the servers, by `perf stat`) give frames per write.\n",
            args.warmup, args.seconds, args.repetitions
        );
    }
    if args.scenario == Scenario::Hold {
        hold_table(&mut s, args, results);
    } else {
        phase_table(&mut s, args, results, &steps);
    }
    let _ = writeln!(
        s,
        "\nCaveats: two cores shared by the peers, Redis, the publisher and the subscriber processes; loopback only. anpi stores every announcement (PostgreSQL, `synchronous_commit=on`) before it is sent; the peers store nothing (nchan distributed: in Redis)."
    );
    s
}

fn hold_table(s: &mut String, args: &PeersArgs, results: &[(PeerKind, Vec<Repetition>)]) {
    let _ = writeln!(
        s,
        "Held for {} s with each peer's pings (25 s apart).\n\n| peer | still connected | server KiB per connection | target ≤ 16 KiB |\n|---|---:|---:|---|",
        args.seconds
    );
    for (kind, reps) in results {
        let kib = Spread::of(reps.iter().map(|r| r.kib_per_connection));
        let met = kib.as_ref().map(|k| verdict(k.median <= 16.0));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            kind.name(),
            show(
                Spread::of(reps.iter().map(|r| r.still_connected as f64)),
                0,
                ""
            ),
            show(kib, 1, ""),
            if *kind == PeerKind::Anpi {
                met.unwrap_or("–")
            } else {
                ""
            }
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn phase_table(
    s: &mut String,
    args: &PeersArgs,
    results: &[(PeerKind, Vec<Repetition>)],
    steps: &[Step],
) {
    let _ = writeln!(
        s,
        "| peer | publishing | deliveries/s | p50 | p99 | p99.9 | to the last, p99 | gaps | missing | CPU s per million | frames per write | server KiB per connection |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (kind, reps) in results {
        let kib = show(Spread::of(reps.iter().map(|r| r.kib_per_connection)), 1, "");
        for (i, step) in steps.iter().enumerate() {
            let phases = at_step(reps, i);
            if phases.is_empty() {
                continue;
            }
            let of = |f: &dyn Fn(&Measured) -> f64| Spread::of(phases.iter().map(|m| f(m)));
            let saturated = phases.iter().any(|m| m.saturated());
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                kind.name(),
                step.label(),
                if saturated { " (saturated)" } else { "" },
                show(of(&|m| m.deliveries_per_second()), 0, ""),
                show(of(&|m| ms(m.p(0.5))), 1, " ms"),
                show(of(&|m| ms(m.p(0.99))), 1, " ms"),
                show(of(&|m| ms(m.p(0.999))), 1, " ms"),
                show(of(&|m| ms(m.to_last.value_at_quantile(0.99))), 1, " ms"),
                phases.iter().map(|m| m.gaps).sum::<u64>(),
                phases.iter().map(|m| m.missing).sum::<u64>(),
                show(of(&|m| m.cpu_per_million()), 1, ""),
                show(
                    Spread::of(phases.iter().filter_map(|m| m.frames_per_write())),
                    2,
                    ""
                ),
                kib,
            );
        }
    }
    let published: Vec<String> = results
        .iter()
        .map(|(kind, reps)| {
            let total: u64 = reps
                .iter()
                .flat_map(|r| &r.phases)
                .map(|m| m.published)
                .sum();
            format!("{} {total}", kind.name())
        })
        .collect();
    let _ = writeln!(
        s,
        "\nMessages published in measured phases, all repetitions: {}.",
        published.join(", ")
    );
    targets(s, args, results, steps);
}

/// The targets for this scenario, checked from the medians.
fn targets(
    s: &mut String,
    args: &PeersArgs,
    results: &[(PeerKind, Vec<Repetition>)],
    steps: &[Step],
) {
    let reps_of = |k: PeerKind| results.iter().find(|(kind, _)| *kind == k).map(|(_, r)| r);
    let Some(anpi) = reps_of(PeerKind::Anpi) else {
        return;
    };
    let median = |reps: &[Repetition], step: usize, f: &dyn Fn(&Measured) -> f64| {
        Spread::of(at_step(reps, step).into_iter().map(f)).map(|s| s.median)
    };
    let mut lines: Vec<String> = Vec::new();
    let ratio = |lines: &mut Vec<String>,
                 what: &str,
                 ours: Option<f64>,
                 theirs: Option<f64>,
                 target: Target,
                 peer: PeerKind| {
        if let (Some(a), Some(b)) = (ours, theirs) {
            let r = a / b;
            let (sign, met) = match target {
                Target::AtLeast(t) => (format!("≥ {t}"), r >= t),
                Target::AtMost(t) => (format!("≤ {t}"), r <= t),
            };
            lines.push(format!(
                "{what}: anpi {} / {} {} = {r:.2}× (target {sign}×): {}",
                fmt_num(a),
                peer.name(),
                fmt_num(b),
                verdict(met)
            ));
        }
    };
    let nchan = [PeerKind::NchanNostore, PeerKind::NchanDistributed];
    match args.scenario {
        Scenario::Steady => {
            let best = |k| reps_of(k).and_then(|r| best_held(r, steps.len()));
            let ours = best(PeerKind::Anpi);
            for peer in nchan {
                ratio(
                    &mut lines,
                    "S2 deliveries/s at the highest rate held",
                    ours.map(|o| o.1),
                    best(peer).map(|b| b.1),
                    Target::AtLeast(1.0),
                    peer,
                );
            }
            ratio(
                &mut lines,
                "S2 deliveries/s at the highest rate held",
                ours.map(|o| o.1),
                best(PeerKind::Socketio).map(|b| b.1),
                Target::AtLeast(2.5),
                PeerKind::Socketio,
            );
            if let (Some((_, d)), Some(c)) = (ours, args.ceiling) {
                lines.push(format!(
                    "S2 anpi at {:.0}% of the syscall ceiling ({} frames/s) (target ≥ 70%): {}",
                    100.0 * d / c,
                    fmt_num(c),
                    verdict(d / c >= 0.7)
                ));
            }
            // p99 at the highest step both held.
            if let (Some((a, _)), Some(sio)) = (ours, reps_of(PeerKind::Socketio))
                && let Some((b, _)) = best_held(sio, steps.len())
            {
                let step = a.min(b);
                ratio(
                    &mut lines,
                    &format!("S2 p99 at {}", steps[step].label()),
                    median(anpi, step, &|m| m.p(0.99) as f64),
                    median(sio, step, &|m| m.p(0.99) as f64),
                    Target::AtMost(0.5),
                    PeerKind::Socketio,
                );
            }
        }
        Scenario::Burst => {
            for peer in nchan {
                ratio(
                    &mut lines,
                    "S3 deliveries/s",
                    median(anpi, 0, &|m| m.deliveries_per_second()),
                    reps_of(peer).and_then(|r| median(r, 0, &|m| m.deliveries_per_second())),
                    Target::AtLeast(1.5),
                    peer,
                );
            }
            if let Some(f) = Spread::of(
                at_step(anpi, 0)
                    .into_iter()
                    .filter_map(Measured::frames_per_write),
            ) {
                lines.push(format!(
                    "S3 anpi frames per write syscall {:.2} (target ≥ 4): {}",
                    f.median,
                    verdict(f.median >= 4.0)
                ));
            }
        }
        Scenario::Broadcast => {
            if let Some(sio) = reps_of(PeerKind::Socketio) {
                ratio(
                    &mut lines,
                    "S4 p99",
                    median(anpi, 0, &|m| m.p(0.99) as f64),
                    median(sio, 0, &|m| m.p(0.99) as f64),
                    Target::AtMost(0.5),
                    PeerKind::Socketio,
                );
            }
        }
        Scenario::Slow => {
            let p99 = |step| median(anpi, step, &|m| m.p(0.99) as f64);
            if let (Some(before), Some(after)) = (p99(0), p99(1)) {
                lines.push(format!(
                    "S5 anpi healthy clients' p99 {:.1} ms → {:.1} ms with 5% not reading: {:+.0}% (target ≤ +20%): {}",
                    before / 1000.0,
                    after / 1000.0,
                    100.0 * (after / before - 1.0),
                    verdict(after <= before * 1.2)
                ));
            }
            for (kind, reps) in results {
                let grew = Spread::of(reps.iter().filter_map(|r| {
                    let (a, b) = (r.phases.first()?, r.phases.get(1)?);
                    Some((b.rss_kib as f64 - a.rss_kib as f64) / 1024.0)
                }));
                lines.push(format!(
                    "S5 {} server memory while 5% do not read: {} MiB",
                    kind.name(),
                    show(grew, 1, "")
                ));
            }
        }
        Scenario::Hold => {}
    }
    if !lines.is_empty() {
        let _ = writeln!(s);
        for line in lines {
            let _ = writeln!(s, "- {line}");
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}

fn fmt_num(v: impl Into<f64>) -> String {
    let v: f64 = v.into();
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Spread, show};

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        let s = Spread::of([30.0, 10.0, 20.0]).expect("values");
        assert_eq!((s.median, s.low, s.high), (20.0, 10.0, 30.0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).expect("values");
        assert_eq!((s.median, s.low, s.high), (2.5, 1.0, 4.0));
    }

    #[test]
    fn no_values_no_spread() {
        assert!(Spread::of(std::iter::empty()).is_none());
        assert_eq!(show(None, 1, " ms"), "–");
    }

    #[test]
    fn shown_as_median_with_the_range_in_brackets() {
        assert_eq!(
            show(Spread::of([1.0, 3.0, 2.0]), 1, " ms"),
            "2.0 ms (1.0–3.0)"
        );
        assert_eq!(show(Spread::of([7.0]), 2, ""), "7.00");
        // No range when every repetition measured the same.
        assert_eq!(show(Spread::of([5.0, 5.0]), 0, ""), "5");
    }
}
