//! One repetition of a scenario against one peer: fresh instances, their
//! subscriber pools, the stamping publisher, and each phase measured.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::peer::{PeerKind, Running, start};
use super::report::ms;
use super::scenarios::{Scenario, Step};
use super::{Measured, PeersArgs, Repetition};
use crate::pool::{Merged, Pool};
use crate::report::{self, start_perf, stop_perf};
use crate::subscribers::{latency_histogram, now_us};

/// Connections per subscriber process (a process may hold 20,000 files).
const PER_POOL: usize = 9_500;
/// How long after the last publish deliveries may still arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// Posts stamped payloads in sequence; the sequence runs on across phases.
struct Publisher {
    client: reqwest::Client,
    bytes: usize,
    seq: u64,
}

impl Publisher {
    /// Publishes on the step's schedule for `seconds`; how many it published.
    /// A peer slower to accept than the schedule is published to as fast as
    /// it accepts (a burst waits for the one before).
    async fn run(&mut self, running: &Running, step: Step, seconds: u64) -> anyhow::Result<u64> {
        let interval = Duration::from_secs_f64(1.0 / step.ticks_per_second);
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let mut next = started;
        let mut published = 0;
        while Instant::now() < until {
            // A burst's messages go out at once, as from many publishers:
            // the servers may order them differently from their stamps.
            let burst = (0..step.per_tick).map(|_| {
                self.seq += 1;
                let mut payload = format!("s={} t={} ", self.seq, now_us());
                while payload.len() < self.bytes {
                    payload.push('x');
                }
                running.publish(&self.client, payload)
            });
            for sent in futures_util::future::join_all(burst).await {
                sent?;
                published += 1;
            }
            next += interval;
            tokio::time::sleep_until(next.into()).await;
        }
        Ok(published)
    }
}

/// Subscriber pools against both instances, half on each.
async fn connect(args: &PeersArgs, running: &Running) -> anyhow::Result<Vec<Pool>> {
    let total = args.subscribers();
    Pool::connect_all(
        &running.ports,
        &running.channel(),
        running.protocol(),
        total,
        PER_POOL.min(total.div_ceil(2)),
        10,
    )
    .await
    .with_context(|| running.kind.name())
}

/// Waits until `expected` deliveries were counted, or the limit passes.
async fn drain(pools: &mut [Pool], expected: u64, limit: Duration) -> anyhow::Result<()> {
    let give_up = Instant::now() + limit;
    while Pool::count_all(pools).await? < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One repetition: fresh instances, subscribers, then every phase.
pub(super) async fn repetition(args: &PeersArgs, kind: PeerKind) -> anyhow::Result<Repetition> {
    let running = start(kind, args).await?;
    let rss_before = running.rss_kib();
    let mut pools = connect(args, &running).await?;
    let connected = args.subscribers();
    let per_connection = |rss: u64| rss.saturating_sub(rss_before) as f64 / connected as f64;
    let mut rep = Repetition {
        kib_per_connection: per_connection(running.rss_kib()),
        still_connected: connected,
        phases: Vec::new(),
    };
    if args.scenario == Scenario::Hold {
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        rep.kib_per_connection = per_connection(running.rss_kib());
        rep.still_connected = 0;
        for pool in &mut pools {
            rep.still_connected += pool.report().await?.connected;
        }
        return Ok(rep);
    }
    let mut publisher = Publisher {
        client: reqwest::Client::new(),
        bytes: args.bytes,
        seq: 0,
    };
    let mut stalled = 0;
    for step in args.steps() {
        let want_stalled = (connected as f64 * step.stalled_percent / 100.0).round() as usize;
        if want_stalled > stalled {
            let share = want_stalled.div_ceil(pools.len());
            for pool in &mut pools {
                pool.ask(&format!("stall {share}")).await?;
            }
            stalled = share * pools.len();
        }
        let healthy = connected - stalled;
        let warm = publisher.run(&running, step, args.warmup).await?;
        drain(&mut pools, warm * healthy as u64, Duration::from_secs(5)).await?;
        for pool in &mut pools {
            pool.report().await?; // the warm-up is not counted
        }
        let measured = phase(&running, &mut pools, &mut publisher, step, args, healthy).await?;
        let saturated = measured.saturated();
        println!(
            "  {} {}: {:.0} deliveries/s, p99 {:.1} ms, gaps {}, missing {}{}",
            kind.name(),
            step.label(),
            measured.deliveries_per_second(),
            ms(measured.p(0.99)),
            measured.gaps,
            measured.missing,
            if saturated { " (saturated)" } else { "" }
        );
        rep.phases.push(measured);
        if saturated && args.scenario == Scenario::Steady {
            break; // the next step up would only be worse
        }
    }
    for pool in &mut pools {
        let _ = pool.ask("quit").await;
    }
    Ok(rep)
}

async fn phase(
    running: &Running,
    pools: &mut [Pool],
    publisher: &mut Publisher,
    step: Step,
    args: &PeersArgs,
    healthy: usize,
) -> anyhow::Result<Measured> {
    let cpu_before = (
        running.cpu_seconds(),
        report::cpu_seconds_of("redis-server"),
    );
    // Without perf the column says so; the rest is still measured.
    let perf = start_perf(&running.pids()).ok();
    let started = Instant::now();
    let published = publisher.run(running, step, args.seconds).await?;
    let seconds = started.elapsed().as_secs_f64();
    let expected = published * healthy as u64;
    drain(pools, expected, DRAIN_LIMIT).await?;
    let cpu_seconds = running.cpu_seconds() - cpu_before.0;
    let redis_cpu_seconds = report::cpu_seconds_of("redis-server") - cpu_before.1;
    let write_syscalls = match perf {
        Some(perf) => stop_perf(perf).await.ok(),
        None => None,
    };

    let Merged { report, latency } = Pool::report_all(pools).await?;
    let (deliveries, gaps) = (report.deliveries, report.gaps);
    let mut to_last = latency_histogram();
    for (n, slowest) in report.by_seq.values() {
        if *n as usize >= healthy {
            to_last.record((*slowest).max(1))?;
        }
    }
    Ok(Measured {
        published,
        seconds,
        offered: step.messages_per_second(),
        deliveries,
        gaps,
        missing: expected.saturating_sub(deliveries),
        latency,
        to_last,
        cpu_seconds,
        redis_cpu_seconds,
        write_syscalls,
        rss_kib: running.rss_kib(),
    })
}
