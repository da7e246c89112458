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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::report;
use crate::subscribers::{Report, latency_histogram};

const AREA: &str = "area:172022";
/// How long a phase waits for its last deliveries.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// The server and `anpi token create` must share the key tokens are made with.

#[derive(clap::Args, Clone)]
pub struct FanoutArgs {
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

/// One subscriber pool process.
pub(crate) struct Pool {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Pool {
    async fn start(server: &str, count: usize, source: &str) -> anyhow::Result<Pool> {
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

    /// `count` subscribers of `channel` (`--protocol`), in pools of at most
    /// `per_pool`, the pools spread over `ports` in turn, each from its own
    /// source address 127.0.0.<first_source + i>; returns once every one is
    /// subscribed.
    pub(crate) async fn connect_all(
        ports: &[u16],
        channel: &str,
        protocol: &str,
        count: usize,
        per_pool: usize,
        first_source: usize,
    ) -> anyhow::Result<Vec<Pool>> {
        let mut pools = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(per_pool);
            let i = pools.len();
            let mut pool = Pool::spawn(&[
                "--server",
                &format!("127.0.0.1:{}", ports[i % ports.len()]),
                "--channel",
                channel,
                "--count",
                &n.to_string(),
                "--source",
                &format!("127.0.0.{}", first_source + i),
                "--protocol",
                protocol,
            ])
            .await?;
            let ready = pool.line().await?;
            if ready["failed"].as_u64() != Some(0) {
                bail!("subscribers failed to connect to {channel}: {ready}");
            }
            pools.push(pool);
            left -= n;
        }
        Ok(pools)
    }

    /// `anpi-loadtest subscribers` with these arguments.
    pub(crate) async fn spawn(args: &[&str]) -> anyhow::Result<Pool> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("subscribers")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(Pool {
            child,
            stdin,
            stdout,
        })
    }

    pub(crate) async fn line(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = self
            .stdout
            .next_line()
            .await?
            .context("a subscriber pool exited")?;
        Ok(serde_json::from_str(&line)?)
    }

    pub(crate) async fn ask(&mut self, command: &str) -> anyhow::Result<serde_json::Value> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.line().await
    }

    pub(crate) async fn report(&mut self) -> anyhow::Result<Report> {
        Ok(serde_json::from_value(self.ask("report").await?)?)
    }

    /// Every pool's report as one: counts summed, latencies pooled, and per
    /// event seq the deliveries summed and the slowest kept.
    pub(crate) async fn report_all(pools: &mut [Pool]) -> anyhow::Result<Merged> {
        let mut all = Merged {
            report: Report::default(),
            latency: latency_histogram(),
        };
        for pool in pools.iter_mut() {
            let r = pool.report().await?;
            all.report.connected += r.connected;
            all.report.deliveries += r.deliveries;
            all.report.gaps += r.gaps;
            all.report.resyncs += r.resyncs;
            for (code, n) in r.closed {
                *all.report.closed.entry(code).or_default() += n;
            }
            for (value, count) in r.latency {
                all.latency.record_n(value, count)?;
            }
            for (seq, (n, slowest)) in r.by_seq {
                let e = all.report.by_seq.entry(seq).or_default();
                e.0 += n;
                e.1 = e.1.max(slowest);
            }
        }
        Ok(all)
    }
}

/// Reports of several pools (`latency` of the report left empty: it is in
/// the histogram).
pub(crate) struct Merged {
    pub report: Report,
    pub latency: Histogram<u64>,
}

/// The server process: its pid for /proc, its address.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kib(&self) -> u64 {
        report::rss_kib(self.pid())
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> f64 {
        report::cpu_seconds(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An office posting occupancy updates through `PATCH /v1/shelters/{id}`.
struct Office {
    client: reqwest::Client,
    base: String,
    token: String,
    /// The area's shelters: (id, name, lat, lon).
    shelters: Vec<(String, String, f64, f64)>,
    next: AtomicU64,
    failures: AtomicU64,
}

impl Office {
    async fn update(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (id, ..) = &self.shelters[n as usize % self.shelters.len()];
        let ok = self
            .client
            .patch(format!("{}/v1/shelters/{id}", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"occupancy": n % 1000}))
            .send()
            .await;
        self.check(ok).await;
    }

    /// Counts a failed update and says why.
    async fn check(&self, sent: reqwest::Result<reqwest::Response>) {
        let why = match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => format!("{e:#}"),
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        eprintln!("office update failed: {why}");
    }

    /// Posts the open-shelter spreadsheet listing the first `open` shelters
    /// with new headcounts: the office's bulk update, one event per listed
    /// shelter, back to back.
    async fn upload(&self, open: usize) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut csv = String::from("ID,名称,人数,緯度,経度\n");
        for (i, (id, name, lat, lon)) in self.shelters.iter().take(open).enumerate() {
            let _ = writeln!(csv, "{id},{name},{},{lat},{lon}", (n + i as u64) % 1000);
        }
        let ok = self
            .client
            .put(format!(
                "{}/v1/municipalities/172022/shelter-status",
                self.base
            ))
            .bearer_auth(&self.token)
            .header("content-type", "text/csv; charset=utf-8")
            .body(csv)
            .send()
            .await;
        self.check(ok).await;
    }
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

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    if args.subscribers > args.hold {
        bail!("--subscribers must not exceed --hold");
    }
    let server = start_server(&args).await?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let office = Arc::new(office(&args, &base).await?);
    let address = format!("127.0.0.1:{}", server.port);

    // Warm: one subscriber, one update, so lazily built state exists.
    let mut warm = Pool::start(&address, 1, "127.0.0.1").await?;
    warm.line().await?;
    office.update().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    warm.ask("quit").await.ok();
    let _ = warm.child.wait().await;
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
        pools.push(Pool::start(&address, n, &format!("127.0.0.{}", i + 1)).await?);
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
        let _ = pool.stdin.write_all(b"quit\n").await;
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
        report::write_section(name, &section)?;
    }
    if failures > 0 {
        bail!("{failures} office updates failed");
    }
    Ok(())
}

async fn start_server(args: &FanoutArgs) -> anyhow::Result<Server> {
    std::fs::create_dir_all(&args.work_dir)?;
    let db = args.work_dir.join("fanout.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let port = report::free_port()?;
    let mut command = std::process::Command::new(&args.anpi_bin);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("ANPI_SECRET", report::BENCH_SECRET)
        .env("ANPI_LIVE_MAX_CONNECTIONS", (args.hold + 100).to_string())
        // Up to 9,500 subscribers share one source address.
        .env("ANPI_MAX_CONNECTIONS_PER_ADDRESS", "20000")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("ANPI_REDIS_CLUSTER")
        .stdout(std::fs::File::create(args.work_dir.join("server.log"))?);
    if let Some(redis) = &args.redis {
        command.env("REDIS_URL", redis);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", args.anpi_bin.display()))?;
    let server = Server { child, port };
    report::wait_ready(port).await?;
    Ok(server)
}

/// A token made with `anpi token create` on the server's database, and the
/// area's shelter ids.
async fn office(args: &FanoutArgs, base: &str) -> anyhow::Result<Office> {
    let db = args.work_dir.join("fanout.db");
    let token = report::office_token(
        &args.anpi_bin,
        &format!("sqlite://{}", db.display()),
        "172022",
        "Fan-out benchmark",
    )?;
    let client = reqwest::Client::new();
    let listed: serde_json::Value = client
        .get(format!("{base}/v1/shelters?municipality=172022&limit=1000"))
        .send()
        .await?
        .json()
        .await?;
    let shelters: Vec<_> = listed["shelters"]
        .as_array()
        .context("shelters")?
        .iter()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_owned(),
                s["name"].as_str()?.replace(',', " "),
                s["location"]["lat"].as_f64()?,
                s["location"]["lon"].as_f64()?,
            ))
        })
        .collect();
    if shelters.is_empty() {
        bail!("the server has no Nanao shelters");
    }
    Ok(Office {
        client,
        base: base.to_owned(),
        token,
        shelters,
        next: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    })
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

/// Runs `publish`, waits for the last deliveries, and merges the pools'
/// reports; with `count_syscalls`, the server's write syscalls meanwhile.
async fn measure<F, Fut>(
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
        delivered = 0;
        for pool in pools.iter_mut() {
            delivered += pool.ask("count").await?["deliveries"].as_u64().unwrap_or(0);
        }
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

const WRITE_SYSCALLS: &str = "syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg";

/// Counts the write-family syscalls of these processes until `stop_perf`.
pub(crate) fn start_perf(pids: &[u32]) -> anyhow::Result<Child> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            WRITE_SYSCALLS,
            "-p",
            &pids.join(","),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("perf (Debian's linux-perf) counts the server's write syscalls")
}

/// Stops perf (SIGINT, as Ctrl-C) and sums its counts.
pub(crate) async fn stop_perf(perf: Child) -> anyhow::Result<u64> {
    let pid = perf.id().context("perf pid")?;
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    let out = perf.wait_with_output().await?;
    let text = String::from_utf8_lossy(&out.stderr);
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("syscalls:"))
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect();
    if counts.len() != 4 {
        bail!("perf stat did not count write syscalls:\n{text}");
    }
    Ok(counts.iter().sum())
}

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

fn print_phase(name: &str, p: &Phase) {
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

fn markdown(
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
    let _ = writeln!(s, "{}.\n", report::machine());
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
