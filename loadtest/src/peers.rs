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

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::fanout::{Merged, Pool, start_perf, stop_perf};
use crate::report;
use crate::subscribers::latency_histogram;

/// Connections per subscriber process (a process may hold 20,000 files).
const PER_POOL: usize = 9_500;
/// A phase whose p99 exceeds this is a peer past saturation.
const SATURATED_P99_US: u64 = 1_000_000;
/// How long after the last publish deliveries may still arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
/// A municipality with no shelters: anpi's snapshot on subscribing is empty,
/// as the peers send nothing on subscribing.
const BENCH_AREA: &str = "131016";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    Anpi,
    NchanNostore,
    NchanDistributed,
    Socketio,
}

impl PeerKind {
    fn name(self) -> &'static str {
        match self {
            PeerKind::Anpi => "anpi",
            PeerKind::NchanNostore => "nchan (nostore)",
            PeerKind::NchanDistributed => "nchan (distributed)",
            PeerKind::Socketio => "Socket.IO 4 + Redis adapter",
        }
    }
}

/// The scenarios of the surge benchmark (S1–S5; S6 is `surge --residents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// S1: 19,000 idle connections per instance, held with pings.
    Hold,
    /// S2: 10,000 subscribers, steady publish rates stepped up until a peer
    /// saturates.
    Steady,
    /// S3: 1,000 subscribers, bursts of 10 messages every 10 ms.
    Burst,
    /// S4: 10,000 subscribers, one publish a second; latency to the last.
    Broadcast,
    /// S5: a steady rate, then the same with 5% of the clients not reading.
    Slow,
}

impl Scenario {
    fn title(self) -> &'static str {
        match self {
            Scenario::Hold => "S1 hold: idle connections with pings",
            Scenario::Steady => "S2 steady fan-out, stepped rates",
            Scenario::Burst => "S3 hot burst: 10 messages every 10 ms",
            Scenario::Broadcast => "S4 big broadcast: one publish a second",
            Scenario::Slow => "S5 slow consumers: 5% stop reading",
        }
    }

    fn default_subscribers(self) -> usize {
        match self {
            Scenario::Hold => 38_000,
            Scenario::Burst => 1_000,
            _ => 10_000,
        }
    }

    fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// What the publisher does during one phase.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// Publishing moments per second.
    ticks_per_second: f64,
    /// Messages published back to back at each moment.
    per_tick: usize,
    /// Percent of the connections that stop reading before this phase.
    stalled_percent: f64,
}

impl Step {
    fn messages_per_second(&self) -> f64 {
        self.ticks_per_second * self.per_tick as f64
    }

    fn label(&self) -> String {
        let mut label = if self.per_tick > 1 {
            format!(
                "{} every {:.0} ms",
                self.per_tick,
                1000.0 / self.ticks_per_second
            )
        } else {
            format!("{}/s", self.ticks_per_second)
        };
        if self.stalled_percent > 0.0 {
            label += &format!(", {}% not reading", self.stalled_percent);
        }
        label
    }
}

#[derive(clap::Args)]
pub struct PeersArgs {
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

    /// The phases of one repetition, in order.
    fn steps(&self) -> Vec<Step> {
        let steady = |rate: f64, stalled_percent: f64| Step {
            ticks_per_second: rate,
            per_tick: 1,
            stalled_percent,
        };
        let first = self.rates.first().copied().unwrap_or(10.0);
        match self.scenario {
            Scenario::Hold => Vec::new(),
            Scenario::Steady => self.rates.iter().map(|&r| steady(r, 0.0)).collect(),
            Scenario::Burst => vec![Step {
                ticks_per_second: 100.0,
                per_tick: 10,
                stalled_percent: 0.0,
            }],
            Scenario::Broadcast => vec![steady(1.0, 0.0)],
            Scenario::Slow => vec![steady(first, 0.0), steady(first, 5.0)],
        }
    }
}

/// Two running instances of one peer.
struct Running {
    kind: PeerKind,
    children: Vec<Child>,
    ports: [u16; 2],
    /// anpi: the office token that may announce in BENCH_AREA.
    token: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    /// SIGTERM first: nginx's master then stops its worker (a SIGKILLed
    /// master leaves the worker holding the port).
    fn drop(&mut self) {
        for c in &self.children {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
        }
        let until = Instant::now() + Duration::from_secs(10);
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    /// The server processes' pids, children included (nginx's workers).
    fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.children.iter().map(Child::id).collect();
        if matches!(
            self.kind,
            PeerKind::NchanNostore | PeerKind::NchanDistributed
        ) {
            pids = report::pids_of("nginx");
        }
        pids
    }

    fn cpu_seconds(&self) -> f64 {
        self.pids().into_iter().map(report::cpu_seconds).sum()
    }

    fn rss_kib(&self) -> u64 {
        self.pids().into_iter().map(report::rss_kib).sum()
    }

    fn protocol(&self) -> &'static str {
        match self.kind {
            PeerKind::Anpi => "anpi-stamped",
            PeerKind::NchanNostore | PeerKind::NchanDistributed => "nchan",
            PeerKind::Socketio => "socketio",
        }
    }

    /// anpi: an area without shelters. The peers: a channel of this run
    /// only, so nothing stored in Redis by an earlier run is delivered.
    fn channel(&self) -> String {
        match self.kind {
            PeerKind::Anpi => format!("area:{BENCH_AREA}"),
            _ => format!("bench{}", self.ports[0]),
        }
    }

    async fn publish(&self, client: &reqwest::Client, payload: String) -> anyhow::Result<()> {
        let port = self.ports[0];
        let request = match self.kind {
            PeerKind::Anpi => client
                .post(format!(
                    "http://127.0.0.1:{port}/v1/municipalities/{BENCH_AREA}/announcements"
                ))
                .bearer_auth(self.token.as_deref().unwrap_or_default())
                .json(&serde_json::json!({ "text": payload })),
            _ => client
                .post(format!("http://127.0.0.1:{port}/pub/{}", self.channel()))
                .body(payload),
        };
        let response = request.send().await?;
        if !response.status().is_success() {
            bail!("publish: {} {}", response.status(), response.text().await?);
        }
        Ok(())
    }
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

async fn start(kind: PeerKind, args: &PeersArgs) -> anyhow::Result<Running> {
    let dir = tempfile::tempdir()?;
    let ports = [report::free_port()?, report::free_port()?];
    let mut running = Running {
        kind,
        children: Vec::new(),
        ports,
        token: None,
        _dir: tempfile::tempdir()?,
    };
    match kind {
        PeerKind::Anpi => {
            let url = report::fresh_database(&args.postgres, "anpi_bench_peers").await?;
            running.token = Some(report::office_token(
                &args.anpi_bin,
                &url,
                BENCH_AREA,
                "Peers benchmark",
            )?);
            for port in ports {
                running.children.push(
                    Command::new(&args.anpi_bin)
                        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                        .env("DATABASE_URL", &url)
                        .env("ANPI_SECRET", report::BENCH_SECRET)
                        .env("REDIS_URL", &args.redis)
                        .env("ANPI_SAMPLE_DATA", "false")
                        // Up to 9,500 subscribers share one source address.
                        .env("ANPI_MAX_CONNECTIONS_PER_ADDRESS", "20000")
                        .env("RUST_LOG", "warn")
                        // Runtime threads per instance (tokio's own variable);
                        // unset: one per core.
                        .envs(
                            args.anpi_threads
                                .map(|n| ("TOKIO_WORKER_THREADS", n.to_string())),
                        )
                        .stdout(Stdio::null())
                        .spawn()?,
                );
            }
        }
        PeerKind::NchanNostore | PeerKind::NchanDistributed => {
            let mode = if kind == PeerKind::NchanNostore {
                "nostore"
            } else {
                "distributed"
            };
            let template = std::fs::read_to_string(peers_dir().join("nchan.conf"))
                .context("loadtest/peers/nchan.conf")?;
            for port in ports {
                let conf = template
                    .replace("@PORT@", &port.to_string())
                    .replace("@DIR@", &dir.path().display().to_string())
                    .replace("@REDIS@", &args.redis)
                    .replace("@MODE@", mode);
                let file = dir.path().join(format!("nginx-{port}.conf"));
                std::fs::write(&file, conf)?;
                running.children.push(
                    Command::new("nginx")
                        .arg("-c")
                        .arg(&file)
                        .arg("-p")
                        .arg(dir.path())
                        .stdout(Stdio::null())
                        .spawn()
                        .context("nginx (run loadtest/peers/install)")?,
                );
            }
        }
        PeerKind::Socketio => {
            let server = peers_dir().join("socketio/server.mjs");
            if !peers_dir().join("socketio/node_modules").exists() {
                bail!("Socket.IO is not installed: run loadtest/peers/install");
            }
            for port in ports {
                running.children.push(
                    Command::new("node")
                        .arg(&server)
                        .env("PORT", port.to_string())
                        .env("REDIS_URL", &args.redis)
                        .stdout(Stdio::null())
                        .spawn()?,
                );
            }
        }
    }
    running._dir = dir;
    for port in ports {
        wait_listening(port).await?;
    }
    Ok(running)
}

async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing listens on port {port} after 60 s")
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

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

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

async fn delivered_so_far(pools: &mut [Pool]) -> anyhow::Result<u64> {
    let mut delivered = 0;
    for pool in pools {
        delivered += pool.ask("count").await?["deliveries"].as_u64().unwrap_or(0);
    }
    Ok(delivered)
}

/// Waits until `expected` deliveries were counted, or the limit passes.
async fn drain(pools: &mut [Pool], expected: u64, limit: Duration) -> anyhow::Result<()> {
    let give_up = Instant::now() + limit;
    while delivered_so_far(pools).await? < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One repetition: fresh instances, subscribers, then every phase.
async fn repetition(args: &PeersArgs, kind: PeerKind) -> anyhow::Result<Repetition> {
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

pub async fn run(args: PeersArgs) -> anyhow::Result<()> {
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
            reps.push(repetition(&args, *kind).await?);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let section = markdown(&args, &results);
    println!("{section}");
    if !args.dry_run {
        report::write_section(&args.section(), &section)?;
    }
    Ok(())
}

fn ms(us: u64) -> f64 {
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

fn markdown(args: &PeersArgs, results: &[(PeerKind, Vec<Repetition>)]) -> String {
    let mut s = String::new();
    let steps = args.steps();
    let _ = writeln!(
        s,
        "## Peers, {}: {} subscribers, {}-byte payloads\n",
        args.scenario.title(),
        args.subscribers(),
        args.bytes
    );
    let _ = writeln!(s, "{}.\n", report::machine());
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
