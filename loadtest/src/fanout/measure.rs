//! One phase of the fan-out scenario measured: the publishing, the wait for
//! the last deliveries, the pools' reports merged, and the server's CPU,
//! write syscalls and frames per flush meanwhile.

use std::time::{Duration, Instant};

use super::Phase;
use super::server::Server;
use crate::pool::{Merged, Pool};
use crate::report::{start_perf, stop_perf};
use crate::subscribers::latency_histogram;

/// How long a phase waits for its last deliveries.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `publish`, waits for the last deliveries, and merges the pools'
/// reports; with `count_syscalls`, the server's write syscalls meanwhile.
pub(super) async fn measure<F, Fut>(
    server: &Server,
    pools: &mut [Pool],
    subscribers: usize,
    count_syscalls: bool,
    publish: F,
) -> anyhow::Result<Phase>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    for pool in pools.iter_mut() {
        pool.report().await?; // reset
    }
    let flushes_before = frames_per_flush(server.port).await;
    let perf = if count_syscalls {
        Some(start_perf(&[server.pid()])?)
    } else {
        None
    };
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let published = publish().await;
    // Until every event has reached every subscriber (or it is clear that
    // some never will: then the report shows them missing).
    let expected = published * subscribers as u64;
    let give_up = Instant::now() + DRAIN_LIMIT;
    let mut delivered = 0;
    while delivered < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
        delivered = Pool::count_all(pools).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = server.cpu_seconds() - cpu_before;
    let write_syscalls = match perf {
        Some(perf) => Some(stop_perf(perf).await?),
        None => None,
    };
    let flushes_after = frames_per_flush(server.port).await;

    let mut phase = Phase {
        seconds,
        published,
        expected,
        cpu_seconds,
        write_syscalls,
        ..Phase::default()
    };
    if let (Some((frames0, flushes0)), Some((frames1, flushes1))) = (flushes_before, flushes_after)
        && flushes1 > flushes0
    {
        phase.frames_per_flush = Some((frames1 - frames0) / (flushes1 - flushes0));
    }
    let Merged { report, latency } = Pool::report_all(pools).await?;
    phase.deliveries = report.deliveries;
    phase.gaps = report.gaps;
    phase.resyncs = report.resyncs;
    phase.closed = report.closed;
    let mut to_last = latency_histogram();
    for (n, slowest) in report.by_seq.values() {
        if *n as usize == subscribers {
            to_last.record(*slowest.max(&1))?;
        } else {
            phase.incomplete += 1;
        }
    }
    phase.latency = Some(latency);
    phase.to_last = Some(to_last);
    Ok(phase)
}

/// Sum and count of the server's `anpi_live_frames_per_flush` histogram.
async fn frames_per_flush(port: u16) -> Option<(f64, f64)> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    };
    Some((
        value("anpi_live_frames_per_flush_sum")?,
        value("anpi_live_frames_per_flush_count")?,
    ))
}
