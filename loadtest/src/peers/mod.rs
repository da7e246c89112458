//! anpi's fan-out beside its peers, in the same run, on the same box: nchan
//! (nostore and distributed Redis modes) and Socket.IO 4 with its Redis
//! adapter, each as two instances on one Redis, against the same subscriber
//! pools (`subscribers --protocol …`) and the same publisher. The publisher
//! posts to the first instance; half the subscribers sit on the second, so
//! half of every delivery crosses Redis. Payloads carry `s=<seq> t=<µs>`.
//!
//! A scenario is a schedule of phases run against each peer in turn, every
//! repetition on freshly started instances: a warm-up (published and
//! delivered, not counted), then the measured time, then up to 15 s for
//! what is still on its way. Tables give the median and the range over the
//! repetitions. Peers come from `loadtest/peers/install`.
//!
//! - `scenarios`: the scenarios and the publishing schedule of their phases;
//! - `peer`: starting and stopping two instances of a peer, publishing to it;
//! - `measure`: one repetition, its subscribers and publisher, each phase;
//! - `report`: median and range, the Markdown tables and the targets.
//!
//! Here: the arguments, what a phase and a repetition measured, and the run
//! over repetitions and peers.

mod measure;
mod peer;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;

use peer::PeerKind;
use scenarios::Scenario;

/// A phase whose p99 exceeds this is a peer past saturation.
const SATURATED_P99_US: u64 = 1_000_000;

#[derive(clap::Args)]
pub(crate) struct PeersArgs {
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "anpi,nchan-nostore,nchan-distributed,socketio"
    )]
    peers: Vec<PeerKind>,
    /// Subscribers, half on each instance (default: the scenario's).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    bytes: usize,
    /// Publishes per second: S2 steps through them until a peer saturates;
    /// S5 uses the first.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,40,80")]
    rates: Vec<f64>,
    /// Seconds of warm-up before each measured phase.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Seconds measured per phase (S1: seconds held).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Fresh starts of every peer; tables give median and range.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// This machine's syscall ceiling in frames/s (`anpi-loadtest ceiling`),
    /// to report deliveries as a share of it.
    #[arg(long)]
    ceiling: Option<f64>,
    /// The section of BENCHMARKS.md to write (default: from the scenario
    /// and payload size, e.g. peers-steady-100b).
    #[arg(long)]
    section: Option<String>,
    #[arg(
        long,
        env = "ANPI_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    #[arg(
        long,
        env = "ANPI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    #[arg(long, default_value = "target/release/anpi")]
    anpi_bin: PathBuf,
    /// Runtime worker threads per anpi instance (default: one per core; nchan
    /// runs one worker per instance).
    #[arg(long)]
    anpi_threads: Option<usize>,
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
}

impl PeersArgs {
    fn subscribers(&self) -> usize {
        self.subscribers
            .unwrap_or_else(|| self.scenario.default_subscribers())
    }

    fn section(&self) -> String {
        self.section
            .clone()
            .unwrap_or_else(|| format!("peers-{}-{}b", self.scenario.name(), self.bytes))
    }
}

/// What one peer did in one measured phase.
struct Measured {
    published: u64,
    seconds: f64,
    /// Messages per second the schedule asked for.
    offered: f64,
    deliveries: u64,
    gaps: u64,
    missing: u64,
    latency: Histogram<u64>,
    to_last: Histogram<u64>,
    cpu_seconds: f64,
    redis_cpu_seconds: f64,
    /// Write-family syscalls of the servers (None: perf unavailable).
    write_syscalls: Option<u64>,
    /// Server memory at the end of the phase.
    rss_kib: u64,
}

impl Measured {
    fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }

    fn p(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }

    fn cpu_per_million(&self) -> f64 {
        (self.cpu_seconds + self.redis_cpu_seconds) * 1e6 / self.deliveries.max(1) as f64
    }

    fn frames_per_write(&self) -> Option<f64> {
        self.write_syscalls
            .map(|w| self.deliveries as f64 / w.max(1) as f64)
    }

    /// Fell behind: lost or reordered something, kept messages a second, or
    /// took publishes slower than the schedule.
    fn saturated(&self) -> bool {
        self.missing > 0
            || self.gaps > 0
            || self.p(0.99) > SATURATED_P99_US
            || (self.published as f64 / self.seconds) < 0.95 * self.offered
    }
}

/// One repetition of a scenario against one peer.
struct Repetition {
    /// Server memory per connection once all are connected (S1: at the end).
    kib_per_connection: f64,
    /// Connections still open at the end (S1).
    still_connected: usize,
    phases: Vec<Measured>,
}

pub(crate) async fn run(args: PeersArgs) -> anyhow::Result<()> {
    let mut results: Vec<(PeerKind, Vec<Repetition>)> =
        args.peers.iter().map(|&k| (k, Vec::new())).collect();
    // Repetitions outermost, so a drift of the machine touches every peer.
    for r in 0..args.repetitions {
        for (kind, reps) in &mut results {
            println!(
                "{} repetition {}: {}",
                args.scenario.title(),
                r + 1,
                kind.name()
            );
            reps.push(measure::repetition(&args, *kind).await?);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let section = report::markdown(&args, &results);
    println!("{section}");
    if !args.dry_run {
        crate::report::write_section(&args.section(), &section)?;
    }
    Ok(())
}
