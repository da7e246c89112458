//! The fan-out scenario: one anpi instance (release build), subscriber pools
//! in child processes (`anpi-loadtest subscribers`), and an office posting
//! shelter updates through the real API — each update is written to the
//! database, published through the broker, and fanned out to every
//! subscriber of the area.
//!
//! Phases, on one server:
//! 1. hold: `--hold` connections subscribed to the area, idle; server memory
//!    per connection from /proc.
//! 2. broadcast: `--subscribers` of them stay; one update per second;
//!    latency to the *last* subscriber of each broadcast.
//! 3. steady: `--rate` updates per second for `--seconds`: deliveries/s,
//!    latency, gaps.
//! 4. burst: the office uploads its open-shelter spreadsheet listing
//!    `--burst` shelters every `--burst-every-ms`; each upload publishes one
//!    event per listed shelter back to back. Write syscalls counted by
//!    `perf stat` on the server → frames per write.
//!
//! - `server`: the anpi server under test and the office posting to it;
//! - `measure`: one phase measured, from the first publish to the last
//!   delivery;
//! - `report`: the phases printed, and the section of `BENCHMARKS.md`.
//!
//! Here: the arguments, what a phase measured, and the phases run in turn.

mod measure;
mod report;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;

use crate::pool::Pool;
use measure::measure;
use report::{markdown, print_phase};
use server::{office, start_server};

const AREA: &str = "area:172022";

#[derive(clap::Args, Clone)]
pub(crate) struct FanoutArgs {
    /// Connections for the hold phase (server memory per connection).
    #[arg(long, default_value_t = 19_000)]
    hold: usize,
    /// Subscribers that stay for the broadcast, steady and burst phases.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Broadcasts, one per second, in the broadcast phase.
    #[arg(long, default_value_t = 30)]
    broadcasts: usize,
    /// Updates per second in the steady phase.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Shelters listed in each spreadsheet upload of the burst phase.
    #[arg(long, default_value_t = 20)]
    burst: usize,
    /// Milliseconds between two uploads in the burst phase.
    #[arg(long, default_value_t = 500)]
    burst_every_ms: u64,
    /// Length of the steady and of the burst phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Connections per subscriber process (a process may hold 20,000 files).
    #[arg(long, default_value_t = 19_000)]
    per_process: usize,
    /// Run the server with this Redis as its broker (default: in-process bus).
    #[arg(long)]
    redis: Option<String>,
    /// The anpi server binary (a release build).
    #[arg(long, default_value = "target/release/anpi")]
    anpi_bin: PathBuf,
    /// Where the SQLite file goes.
    #[arg(long, default_value = "target/bench-fanout")]
    work_dir: PathBuf,
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
}

/// One phase's merged result.
#[derive(Default)]
struct Phase {
    seconds: f64,
    published: u64,
    deliveries: u64,
    gaps: u64,
    resyncs: u64,
    closed: BTreeMap<u16, u64>,
    latency: Option<Histogram<u64>>,
    /// Latency to the last subscriber of each event.
    to_last: Option<Histogram<u64>>,
    /// Events that did not reach every subscriber.
    incomplete: u64,
    /// Deliveries expected: events published × subscribers.
    expected: u64,
    cpu_seconds: f64,
    write_syscalls: Option<u64>,
    frames_per_flush: Option<f64>,
}

pub(crate) async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.subscribers > args.hold {
        bail!("--subscribers must not exceed --hold");
    }
    let server = start_server(&args).await?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let office = Arc::new(office(&args, &base).await?);
    let address = format!("127.0.0.1:{}", server.port);

    // Warm: one subscriber, one update, so lazily built state exists.
    let mut warm = start_pool(&address, 1, "127.0.0.1").await?;
    warm.line().await?;
    office.update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    warm.quit_and_wait().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_kib();

    // 1. Hold.
    let started = Instant::now();
    let mut pools = Vec::new();
    let mut left = args.hold;
    for i in 0.. {
        if left == 0 {
            break;
        }
        let n = left.min(args.per_process);
        pools.push(start_pool(&address, n, &format!("127.0.0.{}", i + 1)).await?);
        left -= n;
    }
    let mut held = 0;
    for pool in &mut pools {
        let ready = pool.line().await?;
        held += ready["ready"].as_u64().unwrap_or(0) as usize;
        if ready["failed"].as_u64() != Some(0) {
            bail!("subscribers failed to connect: {ready}");
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_held = server.rss_kib();
    let per_connection_kib = (rss_held.saturating_sub(rss_before)) as f64 / held as f64;
    println!(
        "hold: {held} connections in {connect_seconds:.1} s; server RSS {rss_before} → {rss_held} KiB = {per_connection_kib:.1} KiB each"
    );

    // The phases borrow these; the publishing futures take copies of the references.
    let (office, args) = (&office, &args);

    // 2. Broadcast, to `subscribers`.
    keep(&mut pools, args.subscribers).await?;
    let broadcast = measure(
        &server,
        &mut pools,
        args.subscribers,
        false,
        || async move {
            for _ in 0..args.broadcasts {
                office.update().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            args.broadcasts as u64
        },
    )
    .await?;
    print_phase("broadcast", &broadcast);

    // 3. Steady.
    let steady = measure(
        &server,
        &mut pools,
        args.subscribers,
        false,
        || async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate);
            let mut sent = 0u64;
            let until = Instant::now() + Duration::from_secs(args.seconds);
            while Instant::now() < until {
                tick.tick().await;
                let office = office.clone();
                tokio::spawn(async move { office.update().await });
                sent += 1;
            }
            sent
        },
    )
    .await?;
    print_phase("steady", &steady);

    // 4. Burst: the office uploads its spreadsheet; every listed shelter is
    // published, back to back. The first upload (closing the unlisted) is
    // not measured.
    office.upload(args.burst).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst = measure(&server, &mut pools, args.subscribers, true, || async move {
        let mut tick = tokio::time::interval(Duration::from_millis(args.burst_every_ms));
        let mut sent = 0u64;
        let until = Instant::now() + Duration::from_secs(args.seconds);
        while Instant::now() < until {
            tick.tick().await;
            office.upload(args.burst).await;
            sent += args.burst as u64;
        }
        sent
    })
    .await?;
    print_phase("burst", &burst);

    let failures = office.failures.load(Ordering::Relaxed);
    for pool in &mut pools {
        pool.tell_quit().await;
    }
    let section = markdown(
        args,
        held,
        connect_seconds,
        per_connection_kib,
        [
            ("broadcast", &broadcast),
            ("steady", &steady),
            ("burst", &burst),
        ],
        failures,
    );
    println!("{section}");
    if !args.dry_run {
        let name = if args.redis.is_some() {
            "fanout-redis"
        } else {
            "fanout"
        };
        crate::report::write_section(name, &section)?;
    }
    if failures > 0 {
        bail!("{failures} office updates failed");
    }
    Ok(())
}

/// A pool of `count` subscribers of the area on `server`, connecting from
/// `source`.
async fn start_pool(server: &str, count: usize, source: &str) -> anyhow::Result<Pool> {
    Pool::spawn(&[
        "--server",
        server,
        "--channel",
        AREA,
        "--count",
        &count.to_string(),
        "--source",
        source,
    ])
    .await
}

async fn keep(pools: &mut [Pool], total: usize) -> anyhow::Result<()> {
    let mut left = total;
    for pool in pools {
        let reply = pool.ask(&format!("keep {left}")).await?;
        left -= reply["kept"].as_u64().unwrap_or(0) as usize;
    }
    // Let the server notice the closed sockets before the next phase.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}
