//! anpi's fan-out beside its peers, in the same run, on the same box: nchan
//! (nostore and distributed Redis modes) and Socket.IO 4 with its Redis
//! adapter, each as two instances on one Redis, against the same subscriber
//! pools (`subscribers --protocol …`) and the same publisher. The publisher
//! posts to the first instance; half the subscribers sit on the second, so
//! half of every delivery crosses Redis. Payloads carry `s=<seq> t=<µs>`.
//!
//! Peers come from `loadtest/peers/install`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use sqlx::Connection;

use crate::fanout::Pool;
use crate::report;
use crate::subscribers::latency_histogram;

/// Connections per subscriber process (a process may hold 20,000 files).
const PER_POOL: usize = 9_500;
/// How long after the last publish deliveries may still arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);
const SECRET: &str = "62656e63682d6f6e6c792d6e6f742d666f722d70726f64756374696f6e2d2d2d";
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

#[derive(clap::Args)]
pub struct PeersArgs {
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "anpi,nchan-nostore,nchan-distributed,socketio"
    )]
    peers: Vec<PeerKind>,
    /// Subscribers, half on each instance.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 100)]
    bytes: usize,
    /// Publishes per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The section of BENCHMARKS.md to write (e.g. s4-broadcast).
    #[arg(long, default_value = "peers")]
    section: String,
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
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
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
            let url = fresh_database(&args.postgres).await?;
            let out = Command::new(&args.anpi_bin)
                .args([
                    "token",
                    "create",
                    "--municipality",
                    BENCH_AREA,
                    "--name",
                    "Peers benchmark",
                ])
                .env("DATABASE_URL", &url)
                .env("ANPI_SECRET", SECRET)
                .output()?;
            if !out.status.success() {
                bail!(
                    "anpi token create: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            running.token = Some(String::from_utf8(out.stdout)?.trim().to_owned());
            for port in ports {
                running.children.push(
                    Command::new(&args.anpi_bin)
                        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                        .env("DATABASE_URL", &url)
                        .env("ANPI_SECRET", SECRET)
                        .env("REDIS_URL", &args.redis)
                        .env("ANPI_SAMPLE_DATA", "false")
                        .env("RUST_LOG", "warn")
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

async fn fresh_database(postgres: &str) -> anyhow::Result<String> {
    let mut admin = sqlx::PgConnection::connect(postgres).await?;
    sqlx::query("drop database if exists anpi_bench_peers with (force)")
        .execute(&mut admin)
        .await?;
    sqlx::query("create database anpi_bench_peers")
        .execute(&mut admin)
        .await?;
    let (server, _) = postgres
        .rsplit_once('/')
        .context("a PostgreSQL URL ends with /database")?;
    Ok(format!("{server}/anpi_bench_peers"))
}

/// What one peer did.
struct Outcome {
    kind: PeerKind,
    published: u64,
    seconds: f64,
    deliveries: u64,
    gaps: u64,
    missing: u64,
    latency: Histogram<u64>,
    to_last: Histogram<u64>,
    cpu_seconds: f64,
    redis_cpu_seconds: f64,
    kib_per_connection: f64,
    connected: usize,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn measure(args: &PeersArgs, running: &Running) -> anyhow::Result<Outcome> {
    let rss_before = running.rss_kib();
    let mut pools = Vec::new();
    let mut left = args.subscribers;
    let mut i = 0;
    while left > 0 {
        let count = left.min(PER_POOL).min(args.subscribers.div_ceil(2));
        let port = running.ports[i % 2];
        let source = format!("127.0.0.{}", 10 + i);
        let channel = running.channel();
        let mut pool = Pool::spawn(&[
            "--server",
            &format!("127.0.0.1:{port}"),
            "--channel",
            &channel,
            "--count",
            &count.to_string(),
            "--source",
            &source,
            "--protocol",
            running.protocol(),
        ])
        .await?;
        let ready = pool.line().await?;
        if ready["failed"].as_u64() != Some(0) {
            bail!(
                "{}: subscribers failed to connect: {ready}",
                running.kind.name()
            );
        }
        pools.push(pool);
        left -= count;
        i += 1;
    }
    let connected = args.subscribers;
    let kib_per_connection = running.rss_kib().saturating_sub(rss_before) as f64 / connected as f64;
    for pool in &mut pools {
        pool.report().await?; // reset
    }

    let client = reqwest::Client::new();
    let cpu_before = (
        running.cpu_seconds(),
        report::cpu_seconds_of("redis-server"),
    );
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut next = started;
    let mut published = 0u64;
    while Instant::now() < until {
        published += 1;
        let mut payload = format!("s={published} t={} ", now_us());
        while payload.len() < args.bytes {
            payload.push('x');
        }
        running.publish(&client, payload).await?;
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let expected = published * connected as u64;
    let give_up = Instant::now() + DRAIN_LIMIT;
    loop {
        let mut delivered = 0;
        for pool in &mut pools {
            delivered += pool.ask("count").await?["deliveries"].as_u64().unwrap_or(0);
        }
        if delivered >= expected || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu_seconds = running.cpu_seconds() - cpu_before.0;
    let redis_cpu_seconds = report::cpu_seconds_of("redis-server") - cpu_before.1;

    let mut latency = latency_histogram();
    let mut by_seq: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let (mut deliveries, mut gaps) = (0, 0);
    for pool in &mut pools {
        let r = pool.report().await?;
        deliveries += r.deliveries;
        gaps += r.gaps;
        for (value, count) in r.latency {
            latency.record_n(value, count)?;
        }
        for (seq, (n, slowest)) in r.by_seq {
            let e = by_seq.entry(seq).or_default();
            e.0 += n;
            e.1 = e.1.max(slowest);
        }
        let _ = pool.ask("quit").await;
    }
    let mut to_last = latency_histogram();
    for (n, slowest) in by_seq.values() {
        if *n as usize == connected {
            to_last.record((*slowest).max(1))?;
        }
    }
    Ok(Outcome {
        kind: running.kind,
        published,
        seconds,
        deliveries,
        gaps,
        missing: expected.saturating_sub(deliveries),
        latency,
        to_last,
        cpu_seconds,
        redis_cpu_seconds,
        kib_per_connection,
        connected,
    })
}

pub async fn run(args: PeersArgs) -> anyhow::Result<()> {
    let mut outcomes = Vec::new();
    for &kind in &args.peers {
        let running = start(kind, &args).await?;
        let outcome = measure(&args, &running).await?;
        drop(running);
        println!(
            "{}: {:.0} deliveries/s, p99 {:.1} ms, to last p99 {:.1} ms, gaps {}, missing {}",
            kind.name(),
            outcome.deliveries as f64 / outcome.seconds,
            ms(outcome.latency.value_at_quantile(0.99)),
            ms(outcome.to_last.value_at_quantile(0.99)),
            outcome.gaps,
            outcome.missing
        );
        outcomes.push(outcome);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let section = markdown(&args, &outcomes);
    println!("{section}");
    if !args.dry_run {
        report::write_section(&args.section, &section)?;
    }
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn markdown(args: &PeersArgs, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Fan-out beside the peers: {} subscribers, {} publishes/s, {}-byte payloads\n",
        args.subscribers, args.rate, args.bytes
    );
    let _ = writeln!(s, "{}.\n", report::machine());
    let peers: Vec<String> = args
        .peers
        .iter()
        .filter_map(|p| clap::ValueEnum::to_possible_value(p).map(|v| v.get_name().to_owned()))
        .collect();
    let _ = writeln!(
        s,
        "Command: `anpi-loadtest peers --peers {} --subscribers {} --rate {} --bytes {} --seconds {} --section {}` (peers from `loadtest/peers/install`).\n",
        peers.join(","),
        args.subscribers,
        args.rate,
        args.bytes,
        args.seconds,
        args.section
    );
    let _ = writeln!(
        s,
        "Each peer runs as two instances on one Redis; half the subscribers on each, the publisher posting to the first over HTTP. One run of {} s per peer, one after another, same subscriber pools and publisher. Latency is from the publisher's stamp to the subscriber's receipt; \"to the last\" is, per message, the latest of its deliveries.\n",
        args.seconds
    );
    let _ = writeln!(
        s,
        "| peer | deliveries/s | p50 | p99 | p99.9 | to the last, p99 | gaps | missing | CPU s per million deliveries: servers + Redis | server KiB per connection |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for o in outcomes {
        let per_million = |cpu: f64| cpu * 1e6 / o.deliveries.max(1) as f64;
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {:.1} + {:.1} | {:.1} |",
            o.kind.name(),
            o.deliveries as f64 / o.seconds,
            ms(o.latency.value_at_quantile(0.5)),
            ms(o.latency.value_at_quantile(0.99)),
            ms(o.latency.value_at_quantile(0.999)),
            ms(o.to_last.value_at_quantile(0.99)),
            o.gaps,
            o.missing,
            per_million(o.cpu_seconds),
            per_million(o.redis_cpu_seconds),
            o.kib_per_connection,
        );
    }
    let published: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{} {}", o.kind.name(), o.published))
        .collect();
    let _ = writeln!(
        s,
        "\nPublished: {}; connected: {} each. Caveats: two cores shared by the peers, Redis, the publisher and the subscriber processes; loopback only; one repetition (the issue asks for three and ranges).",
        published.join(", "),
        outcomes.first().map_or(0, |o| o.connected)
    );
    s
}
