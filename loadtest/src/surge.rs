//! The check-in surge: many residents checking in at once, against anpi on
//! PostgreSQL (`synchronous_commit=on`), with the batch writer and — in the
//! same run, same load — with one transaction per check-in (the naive path:
//! `ANPI_CHECKIN_BATCH=1`). Reports acknowledged check-ins/s, latency of the
//! 201s, 503s, and checks that the database holds exactly what was
//! acknowledged.
//!
//! With `--residents N` it is scenario S6 of the surge benchmark instead:
//! the batch writer alone, anpi on Redis, while N residents follow the
//! city's shelters live (`area:172022`): every check-in also goes to its
//! person's channel, arrivals at shelters change the shelters' counts
//! (coalesced into the counting rounds), and the office posts occupancy
//! updates. Reported beside the check-ins: what the residents received.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use sqlx::Connection;

use crate::pool::{Merged, Pool};
use crate::report;
use crate::subscribers::Report;

#[derive(clap::Args, Clone)]
pub struct SurgeArgs {
    /// Concurrent clients (each a keep-alive connection sending one check-in
    /// after another).
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// Seconds over which the clients start.
    #[arg(long, default_value_t = 5)]
    ramp: u64,
    /// Seconds of sustained load after the ramp (what is reported).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// PostgreSQL to run against (a database `anpi_bench_surge` is made there).
    #[arg(
        long,
        env = "ANPI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    #[arg(long, default_value = "target/release/anpi")]
    anpi_bin: PathBuf,
    /// S6: residents following the city's shelters live during the surge
    /// (0: the write paths compared, no live side).
    #[arg(long, default_value_t = 0)]
    residents: usize,
    /// S6: occupancy updates the office posts per second.
    #[arg(long, default_value_t = 5.0)]
    office_rate: f64,
    #[arg(
        long,
        env = "ANPI_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
}

/// The write paths compared: (check-ins per transaction, transactions at once).
const PATHS: [(usize, usize); 3] = [(512, 4), (1, 1), (1, 16)];
/// The city the surge happens in (the sample data's).
const CITY: &str = "172022";
/// Residents per subscriber process.
const PER_POOL: usize = 9_500;

struct Outcome {
    batch: usize,
    writers: usize,
    acknowledged: u64,
    sustained_acknowledged: u64,
    unavailable: u64,
    errors: u64,
    latency: Histogram<u64>,
    stored: i64,
    /// CPU seconds in the sustained window: anpi, PostgreSQL, the generator.
    cpu: [f64; 3],
    /// S6: what the residents received over the whole run, and the office's
    /// updates acknowledged.
    residents: Option<(Report, Histogram<u64>)>,
    office_updates: u64,
}

pub async fn run(args: SurgeArgs) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&args.postgres).await?;
    let (version, sync): (String, String) = (
        sqlx::query_scalar("select version()")
            .fetch_one(&mut admin)
            .await?,
        sqlx::query_scalar("show synchronous_commit")
            .fetch_one(&mut admin)
            .await?,
    );
    let mut outcomes = Vec::new();
    let paths = if args.residents > 0 {
        &PATHS[..1]
    } else {
        &PATHS[..]
    };
    for &(batch, writers) in paths {
        let url = report::fresh_database(&args.postgres, "anpi_bench_surge").await?;
        let outcome = one_run(&args, &url, batch, writers).await?;
        println!(
            "batch {batch} × {writers}: {} acknowledged ({} in the sustained window), {} × 503, {} errors, p50 {:.1} ms p99 {:.1} ms, stored {}",
            outcome.acknowledged,
            outcome.sustained_acknowledged,
            outcome.unavailable,
            outcome.errors,
            outcome.latency.value_at_quantile(0.5) as f64 / 1000.0,
            outcome.latency.value_at_quantile(0.99) as f64 / 1000.0,
            outcome.stored
        );
        outcomes.push(outcome);
    }
    sqlx::query("drop database if exists anpi_bench_surge with (force)")
        .execute(&mut admin)
        .await?;
    let (name, section) = if args.residents > 0 {
        (
            "surge-residents",
            markdown_residents(&args, &outcomes, &version, &sync),
        )
    } else {
        ("surge", markdown(&args, &outcomes, &version, &sync))
    };
    println!("{section}");
    if !args.dry_run {
        report::write_section(name, &section)?;
    }
    if outcomes.iter().any(|o| o.stored != o.acknowledged as i64) {
        bail!("the database does not hold exactly what was acknowledged");
    }
    Ok(())
}

async fn one_run(
    args: &SurgeArgs,
    url: &str,
    batch: usize,
    writers: usize,
) -> anyhow::Result<Outcome> {
    let token = report::office_token(&args.anpi_bin, url, CITY, "Surge benchmark")?;
    let port = report::free_port()?;
    let mut server = report::anpi_serve(&args.anpi_bin, port, url);
    if args.residents > 0 {
        server.env("REDIS_URL", &args.redis);
    } else {
        server.env_remove("REDIS_URL");
    }
    let mut server = server
        .env("ANPI_CHECKIN_BATCH", batch.to_string())
        .env("ANPI_CHECKIN_WRITERS", writers.to_string())
        // One generator address and unique phones: the limits are not what is measured.
        .env("ANPI_CHECKIN_PER_ADDRESS", "1000000000")
        .stdout(Stdio::null())
        .spawn()?;
    let result = async {
        report::wait_ready(port).await?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.clients)
            .timeout(Duration::from_secs(30))
            .build()?;
        let incident: serde_json::Value = client
            .post(format!("{base}/v1/incidents"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "surge", "hazard": "earthquake", "municipalities": ["172022"]}))
            .send()
            .await?
            .json()
            .await?;
        let incident = incident["id"].as_str().context("incident id")?.to_owned();
        let shelters: serde_json::Value = client
            .get(format!("{base}/v1/shelters?municipality={CITY}&limit=1000"))
            .send()
            .await?
            .json()
            .await?;
        let shelters: Arc<Vec<String>> = Arc::new(
            shelters["shelters"]
                .as_array()
                .context("shelter list")?
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect(),
        );
        let mut pools = residents(args, port).await?;
        for pool in &mut pools {
            pool.report().await?; // from here on
        }
        let office = tokio::spawn(office(
            client.clone(),
            base.clone(),
            token.clone(),
            shelters.clone(),
            args.clone(),
        ));
        let mut outcome = load(
            args,
            &client,
            &base,
            &incident,
            &shelters,
            batch,
            writers,
            server.id(),
        )
        .await?;
        outcome.office_updates = office.await??;
        if !pools.is_empty() {
            tokio::time::sleep(Duration::from_secs(3)).await; // the last round's events
            let Merged {
                mut report,
                latency,
            } = Pool::report_all(&mut pools).await?;
            for pool in &mut pools {
                let _ = pool.ask("quit").await;
            }
            report.by_seq.clear();
            outcome.residents = Some((report, latency));
        }
        let mut db = sqlx::PgConnection::connect(url).await?;
        let stored: i64 = sqlx::query_scalar("select count(*) from checkin")
            .fetch_one(&mut db)
            .await?;
        Ok(Outcome { stored, ..outcome })
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// S6: the residents, subscribed to the city's shelters.
async fn residents(args: &SurgeArgs, port: u16) -> anyhow::Result<Vec<Pool>> {
    let channel = format!("area:{CITY}");
    Pool::connect_all(&[port], &channel, "anpi", args.residents, PER_POOL, 20).await
}

/// S6: the office posting occupancy, round-robin over the city's shelters,
/// for the whole run; how many updates were acknowledged.
async fn office(
    client: reqwest::Client,
    base: String,
    token: String,
    shelters: Arc<Vec<String>>,
    args: SurgeArgs,
) -> anyhow::Result<u64> {
    if args.residents == 0 || shelters.is_empty() {
        return Ok(0);
    }
    let until = Instant::now() + Duration::from_secs(args.ramp + args.seconds);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.office_rate));
    let mut done = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        let id = &shelters[done as usize % shelters.len()];
        let r = client
            .patch(format!("{base}/v1/shelters/{id}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"occupancy": done % 50}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("office update: {} {}", r.status(), r.text().await?);
        }
        done += 1;
    }
    Ok(done)
}

#[allow(clippy::too_many_arguments)]
async fn load(
    args: &SurgeArgs,
    client: &reqwest::Client,
    base: &str,
    incident: &str,
    shelters: &Arc<Vec<String>>,
    batch: usize,
    writers: usize,
    server: u32,
) -> anyhow::Result<Outcome> {
    let url = Arc::new(format!("{base}/v1/incidents/{incident}/checkins"));
    let started = Instant::now();
    let sustained_from = started + Duration::from_secs(args.ramp);
    let until = sustained_from + Duration::from_secs(args.seconds);
    let next_phone = Arc::new(AtomicU64::new(0));
    // CPU of each party over the sustained window.
    let cpu = tokio::spawn(async move {
        let sample = || {
            [
                report::cpu_seconds(server),
                report::cpu_seconds_of("postgres"),
                report::cpu_seconds(std::process::id()),
            ]
        };
        tokio::time::sleep_until(sustained_from.into()).await;
        let before = sample();
        tokio::time::sleep_until(until.into()).await;
        let after = sample();
        [0, 1, 2].map(|i| after[i] - before[i])
    });
    let mut tasks = Vec::new();
    // S6: one resident in four checks in at a shelter.
    let at_shelters = if args.residents > 0 {
        shelters.clone()
    } else {
        Arc::new(Vec::new())
    };
    for c in 0..args.clients {
        let (client, url, next_phone) = (client.clone(), url.clone(), next_phone.clone());
        let at_shelters = at_shelters.clone();
        let start_at = started + Duration::from_secs(args.ramp) * c as u32 / args.clients as u32;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start_at.into()).await;
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut acknowledged, mut sustained, mut unavailable, mut errors) =
                (0u64, 0u64, 0u64, 0u64);
            while Instant::now() < until {
                let n = next_phone.fetch_add(1, Ordering::Relaxed);
                let body = if n % 4 == 0 && !at_shelters.is_empty() {
                    serde_json::json!({
                        "phone": format!("090{:08}", n),
                        "name": format!("住民 {n}"),
                        "statuses": ["safe", "at_shelter"],
                        "shelter_id": at_shelters[(n / 4) as usize % at_shelters.len()],
                    })
                } else {
                    serde_json::json!({
                        "phone": format!("090{:08}", n),
                        "name": format!("住民 {n}"),
                        "statuses": ["safe", "at_home"],
                    })
                };
                let sent = Instant::now();
                let r = client
                    .post(url.as_str())
                    .header("Idempotency-Key", format!("surge-{n}"))
                    .json(&body)
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(201) => {
                        acknowledged += 1;
                        if sent >= sustained_from {
                            sustained += 1;
                            let _ = latency.record(sent.elapsed().as_micros() as u64);
                        }
                    }
                    Ok(503) => {
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ => errors += 1,
                }
            }
            (acknowledged, sustained, unavailable, errors, latency)
        }));
    }
    let mut outcome = Outcome {
        batch,
        writers,
        acknowledged: 0,
        sustained_acknowledged: 0,
        unavailable: 0,
        errors: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        stored: 0,
        cpu: [0.0; 3],
        residents: None,
        office_updates: 0,
    };
    for task in tasks {
        let (a, s, u, e, h) = task.await?;
        outcome.acknowledged += a;
        outcome.sustained_acknowledged += s;
        outcome.unavailable += u;
        outcome.errors += e;
        outcome.latency.add(&h)?;
    }
    outcome.cpu = cpu.await?;
    Ok(outcome)
}

fn markdown(args: &SurgeArgs, outcomes: &[Outcome], version: &str, sync: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Check-in surge: batch writer vs one transaction per check-in\n"
    );
    let _ = writeln!(
        s,
        "{}; {}; `synchronous_commit={sync}`.\n",
        report::machine(),
        version.split(',').next().unwrap_or(version)
    );
    let _ = writeln!(
        s,
        "Command: `loadtest/run-surge` (= `anpi-loadtest surge --clients {} --ramp {} --seconds {}`).\n",
        args.clients, args.ramp, args.seconds
    );
    let _ = writeln!(
        s,
        "{} clients, each a keep-alive HTTP connection posting `POST /v1/incidents/{{id}}/checkins` (a new phone and `Idempotency-Key` each time) as soon as the last was answered; started over {} s, then measured for {} s. A check-in is acknowledged by its `201`, given only after its transaction committed. Same server binary, same database, same load; only `ANPI_CHECKIN_BATCH` (check-ins per transaction) and `ANPI_CHECKIN_WRITERS` (transactions at once) differ.\n",
        args.clients, args.ramp, args.seconds
    );
    let _ = writeln!(
        s,
        "| write path | acknowledged check-ins/s | p50 | p99 | max | 503s | errors | in the database = acknowledged | CPU ms per 1,000: anpi / PostgreSQL / generator |\n|---|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for o in outcomes {
        let name = match (o.batch, o.writers) {
            (1, 1) => "naive: one transaction per check-in, one at a time".to_owned(),
            (1, w) => format!(
                "naive: one transaction per check-in, {w} at once (a transaction per request)"
            ),
            (b, w) => format!("batch writer: up to {b} per transaction, {w} at once"),
        };
        let _ = writeln!(
            s,
            "| {name} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {} ({} = {}) | {} |",
            o.sustained_acknowledged as f64 / args.seconds as f64,
            o.latency.value_at_quantile(0.5) as f64 / 1000.0,
            o.latency.value_at_quantile(0.99) as f64 / 1000.0,
            o.latency.max() as f64 / 1000.0,
            o.unavailable,
            o.errors,
            if o.stored == o.acknowledged as i64 {
                "yes"
            } else {
                "**no**"
            },
            o.stored,
            o.acknowledged,
            o.cpu
                .map(|c| format!("{:.0}", c * 1e6 / o.sustained_acknowledged.max(1) as f64))
                .join(" / "),
        );
    }
    if let [batched, naive @ ..] = outcomes {
        let ratios: Vec<String> = naive
            .iter()
            .filter(|n| n.sustained_acknowledged > 0)
            .map(|n| {
                format!(
                    "**{:.1}×** the naive path with {} at once",
                    batched.sustained_acknowledged as f64 / n.sustained_acknowledged as f64,
                    n.writers
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "\nBatch writer, acknowledged check-ins per second: {}.",
            ratios.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nCaveats: two cores shared by the load generator, anpi and PostgreSQL; loopback only."
    );
    s
}

/// S6: the check-ins beside what the residents received.
fn markdown_residents(args: &SurgeArgs, outcomes: &[Outcome], version: &str, sync: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## S6 the real surge: check-ins flooding in while {} residents follow the shelters live\n",
        args.residents
    );
    let _ = writeln!(
        s,
        "{}; {}; `synchronous_commit={sync}`; Redis as the bus.\n",
        report::machine(),
        version.split(',').next().unwrap_or(version)
    );
    let _ = writeln!(
        s,
        "Command: `anpi-loadtest surge --clients {} --ramp {} --seconds {} --residents {} --office-rate {}`.\n",
        args.clients, args.ramp, args.seconds, args.residents, args.office_rate
    );
    let _ = writeln!(
        s,
        "One anpi instance (batch writer, 512 × 4) on PostgreSQL and Redis, with the sample shelters of Nanao. {} clients post check-ins as fast as they are answered (one in four at a shelter of the city); each check-in is published to its person's channel, arrivals change the shelters' self-reported counts once per counting round (coalesced), and the office posts {} occupancy updates a second. {} residents are subscribed to `area:{CITY}` from before the load until after it. Latency for the residents runs from the broker's stamp to receipt.\n",
        args.clients, args.office_rate, args.residents
    );
    let _ = writeln!(
        s,
        "| acknowledged check-ins/s | p50 | p99 | 503s | errors | in the database = acknowledged | office updates | resident deliveries | per resident | resident p50 | resident p99 | gaps | resyncs | closed by the server |\n|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for o in outcomes {
        let Some((r, latency)) = &o.residents else {
            continue;
        };
        let closed: Vec<String> = r.closed.iter().map(|(c, n)| format!("{n} × {c}")).collect();
        let _ = writeln!(
            s,
            "| {:.0} | {:.1} ms | {:.1} ms | {} | {} | {} ({} = {}) | {} | {} | {:.1} | {:.1} ms | {:.1} ms | {} | {} | {} |",
            o.sustained_acknowledged as f64 / args.seconds as f64,
            o.latency.value_at_quantile(0.5) as f64 / 1000.0,
            o.latency.value_at_quantile(0.99) as f64 / 1000.0,
            o.unavailable,
            o.errors,
            if o.stored == o.acknowledged as i64 {
                "yes"
            } else {
                "**no**"
            },
            o.stored,
            o.acknowledged,
            o.office_updates,
            r.deliveries,
            r.deliveries as f64 / args.residents.max(1) as f64,
            latency.value_at_quantile(0.5) as f64 / 1000.0,
            latency.value_at_quantile(0.99) as f64 / 1000.0,
            r.gaps,
            r.resyncs,
            if closed.is_empty() {
                "none".to_owned()
            } else {
                closed.join(", ")
            },
        );
    }
    let _ = writeln!(
        s,
        "\nNo peer takes part: nchan and Socket.IO store nothing, so there is no check-in to compare. Caveats: two cores shared by the load generator, the residents, anpi, PostgreSQL and Redis; loopback only."
    );
    s
}
