//! The aid scenario: matching among 1,000,000 open requests and 100,000
//! offers spread like Japan's population — the nearest 20 requests for a
//! volunteer and the top 10 offers for a request — answered by anpi in
//! process, by anpi over HTTP, and by PostGIS on the same rows in the same
//! run; then claims per second on one hot request with 1,000 volunteers
//! claiming at once, and the over-claim count read back from the database.
//!
//! The rows go into a fresh PostgreSQL database with anpi's own schema
//! (migrated by `anpi token create`, which also makes the coordinator),
//! by `COPY`; anpi loads them as it does at start (`Store`), PostGIS gets
//! geography columns and GiST indexes beside them.

mod claims;
mod data;
mod section;
mod sql;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anpi::aidindex::{AidIndex, MAX_REACH_M, RequestFilter};
use anpi::domain::shelter::LatLon;
use anpi::store::Store;
use anyhow::Context;
use hdrhistogram::Histogram;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::chrono::{DateTime, Utc};

use crate::report;
use crate::synthetic::{Rng, populated_point};

#[derive(clap::Args)]
pub struct AidArgs {
    /// Open requests (the issue fixes 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    /// Open offers (the issue fixes 100,000).
    #[arg(long, default_value_t = 100_000)]
    offers: usize,
    /// Volunteer points for the nearest-requests queries in process.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Requests whose best offers are asked for in process.
    #[arg(long, default_value_t = 4_000)]
    match_queries: usize,
    /// Queries of each kind sent one after another over one connection, to
    /// PostGIS and to anpi over HTTP; their answers are compared with anpi's.
    #[arg(long, default_value_t = 1_000)]
    sequential: usize,
    /// Seconds of concurrent load per query kind, for PostGIS and for HTTP.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections (HTTP keep-alive, or PostgreSQL) under load.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How far a volunteer looks, metres (the API's default).
    #[arg(long, default_value_t = 10_000.0)]
    radius_m: f64,
    /// Units of the hot request.
    #[arg(long, default_value_t = 500)]
    hot_quantity: i32,
    /// Volunteers claiming one unit of it each, all at once.
    #[arg(long, default_value_t = 1_000)]
    claimants: usize,
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// PostgreSQL with PostGIS available (a database `anpi_bench_aid` is
    /// made there for the run and dropped after).
    #[arg(
        long,
        env = "ANPI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// The anpi server binary (a release build).
    #[arg(long, default_value = "target/release/anpi")]
    anpi_bin: PathBuf,
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
}

const DATABASE: &str = "anpi_bench_aid";
/// Distances agree when this close (metres): the two spheres' radii differ
/// by 5 parts in 10⁹.
const METRES: f64 = 0.01;
/// Scores agree when this close.
const SCORE: f64 = 1e-9;

/// One measured way of answering.
struct Row {
    what: &'static str,
    how: String,
    latency: Histogram<u64>,
    per_second: f64,
    /// Mean records per answer.
    answers: f64,
    errors: u64,
}

/// An answer as compared: (id, distance or score), best first.
type Answer = Vec<(String, f64)>;

/// How the timings of the load came out, for the report.
#[derive(Default)]
struct Load {
    generate: Duration,
    copy: Duration,
    indexes: Vec<(&'static str, Duration)>,
    store_requests: Duration,
    store_offers: Duration,
    index_build: Duration,
    server_ready: Duration,
    server_rss_mib: f64,
    /// `/proc/loadavg` when the run started: other work on the machine.
    load_average: String,
    /// Uncommitted changes to what the anpi binary is built from.
    dirty: bool,
}

/// Agreement of one peer's answers with anpi's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Agreement {
    compared: usize,
    /// The same records.
    same: usize,
    /// Other records, but only among equals: the same distances (scores)
    /// in the same order, so both are right answers.
    ties: usize,
    /// Mean share of anpi's records also in the other answer.
    overlap: f64,
}

impl Agreement {
    fn of(anpi: &[Answer], other: &[Answer], tolerance: f64) -> Agreement {
        let mut a = Agreement::default();
        let mut overlap = 0.0;
        for (x, y) in anpi.iter().zip(other) {
            a.compared += 1;
            match compare(x, y, tolerance) {
                Verdict::Same => a.same += 1,
                Verdict::Ties => a.ties += 1,
                Verdict::Differ => {}
            }
            overlap += shared(x, y);
        }
        a.overlap = overlap / a.compared.max(1) as f64;
        a
    }

    fn agreeing(&self) -> f64 {
        (self.same + self.ties) as f64 / self.compared.max(1) as f64
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Same,
    Ties,
    Differ,
}

/// Whether two answers agree: the same records (in any order), or records
/// whose keys (distances or scores, best first) are the same one by one.
fn compare(a: &[(String, f64)], b: &[(String, f64)], tolerance: f64) -> Verdict {
    fn ids(x: &[(String, f64)]) -> Vec<&str> {
        let mut v: Vec<&str> = x.iter().map(|(id, _)| id.as_str()).collect();
        v.sort_unstable();
        v
    }
    if ids(a) == ids(b) {
        Verdict::Same
    } else if a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((_, x), (_, y))| (x - y).abs() <= tolerance + 1e-7 * x.abs().max(y.abs()))
    {
        Verdict::Ties
    } else {
        Verdict::Differ
    }
}

/// Share of `a`'s records also in `b` (1 when both are empty).
fn shared(a: &[(String, f64)], b: &[(String, f64)]) -> f64 {
    if a.is_empty() {
        return if b.is_empty() { 1.0 } else { 0.0 };
    }
    let b: std::collections::HashSet<&str> = b.iter().map(|(id, _)| id.as_str()).collect();
    a.iter().filter(|(id, _)| b.contains(id.as_str())).count() as f64 / a.len() as f64
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds")
}

pub async fn run(args: AidArgs) -> anyhow::Result<()> {
    let run_started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    // Whole seconds: anpi's ages are whole seconds too.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).context("the clock")?;
    let mut load = Load {
        load_average: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        dirty: !report::command_line(
            "git",
            &[
                "status",
                "--porcelain",
                "--",
                "src",
                "migrations",
                "Cargo.toml",
            ],
        )
        .is_empty(),
        ..Load::default()
    };

    // The data, and what the queries ask about.
    let started = Instant::now();
    let mut rng = Rng::new(args.seed);
    let requests = data::requests(args.requests, &mut rng, now);
    let offers = data::offers(args.offers, &mut rng, now);
    let hot = data::hot_request(args.hot_quantity, &mut rng, now);
    let mut rng = Rng::new(args.seed ^ 0x766f_6c75_6e74_6565);
    let points: Vec<LatLon> = (0..args.queries)
        .map(|_| populated_point(&mut rng))
        .collect();
    let picked: Vec<String> = (0..args.match_queries)
        .map(|_| {
            requests[rng.below(requests.len() as i64) as usize]
                .id
                .clone()
        })
        .collect();
    let spread = data::spread(&requests);
    let max_reach = offers.iter().map(|o| o.reach_m).fold(0.0, f64::max);
    load.generate = started.elapsed();
    println!(
        "generated {} requests, {} offers in {:.1} s: {spread:?}",
        requests.len(),
        offers.len(),
        load.generate.as_secs_f64()
    );

    let url = report::fresh_database(&args.postgres, DATABASE).await?;
    let result = async {
        // anpi's schema and the coordinator who makes the offers and
        // registers the volunteers.
        let coordinator = coordinator_token(&args.anpi_bin, &url, &hot.municipality)?;
        let pool = PgPoolOptions::new()
            .max_connections(args.connections as u32)
            .connect(&url)
            .await?;
        let coordinator_id: i64 =
            sqlx::query_scalar("select id from official where role = 'coordinator'")
                .fetch_one(&pool)
                .await?;
        sqlx::query("create extension if not exists postgis")
            .execute(&pool)
            .await?;
        for statement in sql::ADD_COLUMNS {
            sqlx::query(statement).execute(&pool).await?;
        }
        let started = Instant::now();
        copy(&pool, &requests, &hot, &offers, coordinator_id).await?;
        load.copy = started.elapsed();
        for (what, statement) in sql::INDEXES {
            let started = Instant::now();
            sqlx::query(statement).execute(&pool).await?;
            load.indexes.push((what, started.elapsed()));
        }
        sqlx::query("analyze aid_request").execute(&pool).await?;
        sqlx::query("analyze aid_offer").execute(&pool).await?;
        let versions: String = sqlx::query_scalar(
            "select split_part(version(), ' on ', 1) || ', PostGIS ' || postgis_lib_version() \
             || ', shared_buffers ' || current_setting('shared_buffers')",
        )
        .fetch_one(&pool)
        .await?;
        let hot_area_open: i64 = sqlx::query_scalar(
            "select count(*) from aid_request where municipality = $1 \
             and status in ('open', 'partially_claimed')",
        )
        .bind(&hot.municipality)
        .fetch_one(&pool)
        .await?;
        println!(
            "loaded in {:.1} s, indexes {:?}",
            load.copy.as_secs_f64(),
            load.indexes
        );

        // anpi in process: loaded as the server loads it.
        let store = Store::connect(&url).await?;
        let started = Instant::now();
        let loaded_requests = store.active_aid_requests().await?;
        load.store_requests = started.elapsed();
        let started = Instant::now();
        let loaded_offers = store.open_aid_offers().await?;
        load.store_offers = started.elapsed();
        store.close().await;
        anyhow::ensure!(
            loaded_requests.len() == requests.len() + 1 && loaded_offers.len() == offers.len(),
            "anpi loaded {} requests and {} offers",
            loaded_requests.len(),
            loaded_offers.len()
        );
        let started = Instant::now();
        let index = AidIndex::new(loaded_requests, loaded_offers);
        load.index_build = started.elapsed();
        println!(
            "anpi: store {:.1} s + {:.1} s, index {:.1} s",
            load.store_requests.as_secs_f64(),
            load.store_offers.as_secs_f64(),
            load.index_build.as_secs_f64()
        );
        let mut near_rows = Vec::new();
        let mut match_rows = Vec::new();
        let (anpi_near, anpi_matches) = in_process(
            &args,
            &index,
            &points,
            &picked,
            now,
            threads,
            &mut near_rows,
            &mut match_rows,
        )?;
        let visited = visited(&index, &picked, max_reach)?;
        drop(index);

        // PostGIS.
        let (postgis_near, postgis_matches, exact_near, exact_matches) = postgis(
            &args,
            &pool,
            &points,
            &picked,
            now,
            max_reach,
            &mut near_rows,
            &mut match_rows,
        )
        .await?;
        pool.close().await;

        // anpi over HTTP, then the claims, on one server.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        let (http_near, http_matches, claims) = served(
            &args,
            &url,
            &pool,
            &coordinator,
            &hot.id,
            &points,
            &picked,
            &mut load,
            &mut near_rows,
            &mut match_rows,
        )
        .await?;
        pool.close().await;

        let agreement = [
            (
                "nearest 20",
                Agreement::of(&anpi_near, &postgis_near, METRES),
                Agreement::of(&anpi_near, &exact_near, METRES),
                Agreement::of(&anpi_near, &http_near, METRES),
            ),
            (
                "top 10 offers",
                Agreement::of(&anpi_matches, &postgis_matches, SCORE),
                Agreement::of(&anpi_matches, &exact_matches, SCORE),
                Agreement::of(&anpi_matches, &http_matches, SCORE),
            ),
        ];
        anyhow::Ok(Report {
            versions,
            spread,
            hot_area_open,
            max_reach,
            visited,
            near_rows,
            match_rows,
            agreement,
            claims,
        })
    }
    .await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&args.postgres).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {DATABASE} with (force)"
    )))
    .execute(&mut admin)
    .await?;
    let report = result?;
    let section = section::markdown(&args, threads, &load, &report, run_started.elapsed());
    println!("{section}");
    if !args.dry_run {
        report::write_section("aid", &section)?;
    }
    let c = &report.claims;
    anyhow::ensure!(
        c.stored.over_claim() == 0 && c.other.is_empty() && c.acknowledged_unstored == 0,
        "claims went wrong: {} units over-claimed, other statuses {:?}, {} acknowledged but not stored",
        c.stored.over_claim(),
        c.other,
        c.acknowledged_unstored
    );
    Ok(())
}

struct Report {
    versions: String,
    spread: data::Spread,
    hot_area_open: i64,
    max_reach: f64,
    /// Open offers around a request's public place, mean over a sample:
    /// (within `MAX_REACH_M`, what `offers_for` walks; within the longest
    /// reach any offer has; requests sampled).
    visited: (f64, f64, usize),
    near_rows: Vec<Row>,
    match_rows: Vec<Row>,
    /// (query, with PostGIS on public places, on exact points, over HTTP).
    agreement: [(&'static str, Agreement, Agreement, Agreement); 2],
    claims: claims::Outcome,
}

/// A coordinator's token for `municipality`, made with `anpi token create`
/// (which migrates the database first).
fn coordinator_token(anpi_bin: &Path, url: &str, municipality: &str) -> anyhow::Result<String> {
    let out = Command::new(anpi_bin)
        .args([
            "token",
            "create",
            "--role",
            "coordinator",
            "--org",
            "ベンチマーク災害ボランティアセンター",
            "--municipality",
            municipality,
        ])
        .env("DATABASE_URL", url)
        .env("ANPI_SECRET", report::BENCH_SECRET)
        .output()
        .with_context(|| format!("running {}", anpi_bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "anpi token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `COPY` of every request (and the hot one) and offer, 50,000 rows a round.
async fn copy(
    pool: &PgPool,
    requests: &[data::Request],
    hot: &data::Request,
    offers: &[data::Offer],
    account_id: i64,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let statement = format!("copy aid_request ({}) from stdin", data::REQUEST_COLUMNS);
    let mut sink = conn.copy_in_raw(&statement).await?;
    for chunk in requests.chunks(50_000) {
        let mut text = String::with_capacity(chunk.len() * 400);
        for r in chunk {
            data::request_row(r, &mut text);
        }
        sink.send(text.into_bytes()).await?;
    }
    let mut text = String::new();
    data::request_row(hot, &mut text);
    sink.send(text.into_bytes()).await?;
    sink.finish().await?;
    let statement = format!("copy aid_offer ({}) from stdin", data::OFFER_COLUMNS);
    let mut sink = conn.copy_in_raw(&statement).await?;
    for chunk in offers.chunks(50_000) {
        let mut text = String::with_capacity(chunk.len() * 400);
        for o in chunk {
            data::offer_row(o, account_id, &mut text);
        }
        sink.send(text.into_bytes()).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// Runs `f` on every input, on `threads` threads (inputs split between
/// them), timing each call alone: (latencies, calls per second of wall
/// clock, results in input order).
fn each_timed<T: Sync, R: Send>(
    inputs: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> anyhow::Result<(Histogram<u64>, f64, Vec<R>)> {
    let chunk = inputs.len().div_ceil(threads.max(1)).max(1);
    let started = Instant::now();
    let parts: Vec<anyhow::Result<(Histogram<u64>, Vec<R>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || {
                    let mut hist = histogram();
                    let mut out = Vec::with_capacity(part.len());
                    for input in part {
                        let t = Instant::now();
                        let r = f(input);
                        hist.record(t.elapsed().as_nanos().max(1) as u64)?;
                        out.push(r);
                    }
                    Ok((hist, out))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a measuring thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut all = histogram();
    let mut results = Vec::with_capacity(inputs.len());
    for part in parts {
        let (hist, out) = part?;
        all.add(hist)?;
        results.extend(out);
    }
    Ok((all, inputs.len() as f64 / elapsed.as_secs_f64(), results))
}

#[allow(clippy::too_many_arguments)]
fn in_process(
    args: &AidArgs,
    index: &AidIndex,
    points: &[LatLon],
    picked: &[String],
    now: DateTime<Utc>,
    threads: usize,
    near_rows: &mut Vec<Row>,
    match_rows: &mut Vec<Row>,
) -> anyhow::Result<(Vec<Answer>, Vec<Answer>)> {
    let requests: Vec<_> = picked
        .iter()
        .map(|id| {
            index
                .request(id)
                .context("a picked request is in the index")
        })
        .collect::<anyhow::Result<_>>()?;
    let filter = RequestFilter::default();
    let mut near_answers = Vec::new();
    let mut match_answers = Vec::new();
    for n in [1, threads] {
        let (latency, per_second, hits) = tokio::task::block_in_place(|| {
            each_timed(points, n, |p| {
                index.nearest_requests(*p, args.radius_m, 20, &filter)
            })
        })?;
        near_rows.push(Row {
            what: "anpi in process (R-tree)",
            how: format!("{n} thread{}, {} queries", plural(n), points.len()),
            latency,
            per_second,
            answers: mean(hits.iter().map(Vec::len)),
            errors: 0,
        });
        if n == 1 {
            near_answers = hits
                .iter()
                .take(args.sequential)
                .map(|h| h.iter().map(|(r, d)| (r.id.clone(), *d)).collect())
                .collect();
        }
        let (latency, per_second, hits) = tokio::task::block_in_place(|| {
            each_timed(&requests, n, |r| index.offers_for(r, now, 10))
        })?;
        match_rows.push(Row {
            what: "anpi in process (R-tree)",
            how: format!("{n} thread{}, {} queries", plural(n), requests.len()),
            latency,
            per_second,
            answers: mean(hits.iter().map(Vec::len)),
            errors: 0,
        });
        if n == 1 {
            match_answers = hits
                .iter()
                .take(args.sequential)
                .map(|h| h.iter().map(|(o, s, _)| (o.id.clone(), *s)).collect())
                .collect();
        }
        if threads == 1 {
            break;
        }
    }
    Ok((near_answers, match_answers))
}

/// How many open offers lie around the first 200 picked requests' public
/// places: within `MAX_REACH_M` (what `offers_for` walks, nearest first)
/// and within the longest reach any offer has (all that can match).
fn visited(
    index: &AidIndex,
    picked: &[String],
    max_reach: f64,
) -> anyhow::Result<(f64, f64, usize)> {
    let sample: Vec<_> = picked.iter().take(200).collect();
    let (mut all, mut reachable) = (0usize, 0usize);
    for id in &sample {
        let r = index
            .request(id)
            .context("a picked request is in the index")?;
        let at = anpi::aid::public_place(r.at).0;
        all += index.nearest_offers(at, MAX_REACH_M, usize::MAX, &[]).len();
        reachable += index.nearest_offers(at, max_reach, usize::MAX, &[]).len();
    }
    let n = sample.len().max(1) as f64;
    Ok((all as f64 / n, reachable as f64 / n, sample.len()))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn mean(lens: impl Iterator<Item = usize>) -> f64 {
    let (mut sum, mut n) = (0usize, 0usize);
    for l in lens {
        sum += l;
        n += 1;
    }
    sum as f64 / n.max(1) as f64
}

/// `query(i)` for i in 0..n, one after another: (latencies, per second, results).
async fn one_after_another<R>(
    n: usize,
    mut query: impl AsyncFnMut(usize) -> anyhow::Result<R>,
) -> anyhow::Result<(Histogram<u64>, f64, Vec<R>)> {
    let mut hist = histogram();
    let mut out = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let r = query(i).await?;
        hist.record(t.elapsed().as_nanos() as u64)?;
        out.push(r);
    }
    Ok((hist, n as f64 / started.elapsed().as_secs_f64(), out))
}

/// `workers` loops, each sending `query(worker, i)` as soon as its last
/// was answered; a query answers with its record count. The first second
/// warms up (connections opened, caches filled) and is not counted; then
/// `seconds` are measured: (latencies, answers per second, mean records,
/// errors).
async fn for_seconds<F, Fut>(
    workers: usize,
    seconds: u64,
    query: F,
) -> anyhow::Result<(Histogram<u64>, f64, f64, u64)>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<usize>> + Send + 'static,
{
    let measured_from = Instant::now() + Duration::from_secs(1);
    let deadline = measured_from + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let query = query.clone();
            tokio::spawn(async move {
                let mut hist = histogram();
                let (mut records, mut errors, mut first_error) = (0usize, 0u64, None);
                let mut i = w * 7_919;
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    let outcome = query(w, i).await;
                    i += 1;
                    if t < measured_from {
                        continue;
                    }
                    match outcome {
                        Ok(n) => {
                            hist.record(t.elapsed().as_nanos() as u64)?;
                            records += n;
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                anyhow::Ok((hist, records, errors, first_error))
            })
        })
        .collect();
    let mut all = histogram();
    let (mut records, mut errors) = (0usize, 0u64);
    for t in tasks {
        let (hist, r, e, first) = t.await??;
        all.add(hist)?;
        records += r;
        errors += e;
        if let Some(first) = first {
            eprintln!("error under load: {first:#}");
        }
    }
    let elapsed = measured_from.elapsed().as_secs_f64();
    let (per_second, mean_records) = (
        all.len() as f64 / elapsed,
        records as f64 / all.len().max(1) as f64,
    );
    Ok((all, per_second, mean_records, errors))
}

type Answers = (Vec<Answer>, Vec<Answer>, Vec<Answer>, Vec<Answer>);

#[allow(clippy::too_many_arguments)]
async fn postgis(
    args: &AidArgs,
    pool: &PgPool,
    points: &[LatLon],
    picked: &[String],
    now: DateTime<Utc>,
    max_reach: f64,
    near_rows: &mut Vec<Row>,
    match_rows: &mut Vec<Row>,
) -> anyhow::Result<Answers> {
    let n = args.sequential;
    let mut conn = pool.acquire().await?;
    let (latency, per_second, near) = one_after_another(n.min(points.len()), async |i| {
        let p = points[i];
        let rows: Vec<(String, f64)> = sqlx::query_as(sql::NEAREST)
            .bind(p.lon)
            .bind(p.lat)
            .bind(args.radius_m)
            .fetch_all(&mut *conn)
            .await?;
        anyhow::Ok(rows)
    })
    .await?;
    near_rows.push(Row {
        what: "PostGIS KNN (GiST, geography)",
        how: format!("1 connection, {} queries", near.len()),
        latency,
        per_second,
        answers: mean(near.iter().map(Vec::len)),
        errors: 0,
    });
    let (latency, per_second, matches) = one_after_another(n.min(picked.len()), async |i| {
        let rows: Vec<(String, f64, f64)> = sqlx::query_as(sql::OFFERS_FOR)
            .bind(&picked[i])
            .bind(now)
            .bind(max_reach)
            .fetch_all(&mut *conn)
            .await?;
        anyhow::Ok(
            rows.into_iter()
                .map(|(id, s, _)| (id, s))
                .collect::<Answer>(),
        )
    })
    .await?;
    match_rows.push(Row {
        what: "PostGIS (GiST, ST_DWithin, score in SQL)",
        how: format!("1 connection, {} queries", matches.len()),
        latency,
        per_second,
        answers: mean(matches.iter().map(Vec::len)),
        errors: 0,
    });
    // Not timed: the same queries from the exact points.
    let mut exact_near = Vec::new();
    for p in points.iter().take(n) {
        exact_near.push(
            sqlx::query_as::<_, (String, f64)>(sql::NEAREST_EXACT)
                .bind(p.lon)
                .bind(p.lat)
                .bind(args.radius_m)
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    let mut exact_matches = Vec::new();
    for id in picked.iter().take(n) {
        let rows: Vec<(String, f64, f64)> = sqlx::query_as(sql::OFFERS_FOR_EXACT)
            .bind(id)
            .bind(now)
            .bind(max_reach)
            .fetch_all(&mut *conn)
            .await?;
        exact_matches.push(rows.into_iter().map(|(id, s, _)| (id, s)).collect());
    }
    drop(conn);

    let points = Arc::new(points.to_vec());
    let picked = Arc::new(picked.to_vec());
    let radius = args.radius_m;
    let (latency, per_second, answers, errors) = {
        let (pool, points) = (pool.clone(), points.clone());
        for_seconds(args.connections, args.seconds, move |_, i| {
            let (pool, p) = (pool.clone(), points[i % points.len()]);
            async move {
                let rows: Vec<(String, f64)> = sqlx::query_as(sql::NEAREST)
                    .bind(p.lon)
                    .bind(p.lat)
                    .bind(radius)
                    .fetch_all(&pool)
                    .await?;
                Ok(rows.len())
            }
        })
        .await?
    };
    near_rows.push(Row {
        what: "PostGIS KNN (GiST, geography)",
        how: format!("{} connections, {} s", args.connections, args.seconds),
        latency,
        per_second,
        answers,
        errors,
    });
    let (latency, per_second, answers, errors) = {
        let (pool, picked) = (pool.clone(), picked.clone());
        for_seconds(args.connections, args.seconds, move |_, i| {
            let pool = pool.clone();
            let id = picked[i % picked.len()].clone();
            async move {
                let rows: Vec<(String, f64, f64)> = sqlx::query_as(sql::OFFERS_FOR)
                    .bind(id)
                    .bind(now)
                    .bind(max_reach)
                    .fetch_all(&pool)
                    .await?;
                Ok(rows.len())
            }
        })
        .await?
    };
    match_rows.push(Row {
        what: "PostGIS (GiST, ST_DWithin, score in SQL)",
        how: format!("{} connections, {} s", args.connections, args.seconds),
        latency,
        per_second,
        answers,
        errors,
    });
    Ok((near, matches, exact_near, exact_matches))
}

/// Records in a JSON answer, counted without parsing it: each has one
/// `distance_m`.
fn records(body: &[u8]) -> usize {
    const KEY: &[u8] = b"\"distance_m\"";
    body.windows(KEY.len()).filter(|w| *w == KEY).count()
}

/// (id, `key`) of each record of a JSON answer's `list`.
fn answer_of(body: &[u8], list: &str, key: &str) -> anyhow::Result<Answer> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    v[list]
        .as_array()
        .with_context(|| format!("no {list} in the answer"))?
        .iter()
        .map(|r| {
            Ok((
                r["id"].as_str().context("an id")?.to_owned(),
                r[key].as_f64().with_context(|| format!("no {key}"))?,
            ))
        })
        .collect()
}

async fn get_ok(client: &reqwest::Client, url: String) -> anyhow::Result<impl AsRef<[u8]> + use<>> {
    let reply = client.get(&url).send().await?;
    let status = reply.status();
    let body = reply.bytes().await?;
    anyhow::ensure!(status == 200, "GET {url}: {status}");
    Ok(body)
}

type Served = (Vec<Answer>, Vec<Answer>, claims::Outcome);

#[allow(clippy::too_many_arguments)]
async fn served(
    args: &AidArgs,
    url: &str,
    pool: &PgPool,
    coordinator: &str,
    hot_id: &str,
    points: &[LatLon],
    picked: &[String],
    load: &mut Load,
    near_rows: &mut Vec<Row>,
    match_rows: &mut Vec<Row>,
) -> anyhow::Result<Served> {
    let port = report::free_port()?;
    let started = Instant::now();
    let mut server = report::anpi_serve(&args.anpi_bin, port, url)
        .env("ANPI_SAMPLE_DATA", "false")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.anpi_bin.display()))?;
    let result = async {
        report::wait_ready(port).await?;
        load.server_ready = started.elapsed();
        load.server_rss_mib = report::rss_kib(server.id()) as f64 / 1024.0;
        println!(
            "anpi serve ready in {:.1} s, {:.0} MiB",
            load.server_ready.as_secs_f64(),
            load.server_rss_mib
        );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(args.connections)
            .timeout(Duration::from_secs(60))
            .build()?;
        let near_url = {
            let base = base.clone();
            let radius = args.radius_m;
            move |p: LatLon| {
                format!(
                    "{base}/v1/aid/requests?near={},{}&radius_m={radius}&limit=20",
                    p.lat, p.lon
                )
            }
        };
        let match_url = {
            let base = base.clone();
            move |id: &str| format!("{base}/v1/aid/requests/{id}/matches?limit=10")
        };

        let n = args.sequential;
        let (latency, per_second, bodies) = one_after_another(n.min(points.len()), async |i| {
            get_ok(&client, near_url(points[i])).await
        })
        .await?;
        let near = bodies
            .iter()
            .map(|b| answer_of(b.as_ref(), "requests", "distance_m"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        near_rows.push(Row {
            what: "anpi over HTTP",
            how: format!("1 connection, {} queries", near.len()),
            latency,
            per_second,
            answers: mean(near.iter().map(Vec::len)),
            errors: 0,
        });
        let (latency, per_second, bodies) = one_after_another(n.min(picked.len()), async |i| {
            get_ok(&client, match_url(&picked[i])).await
        })
        .await?;
        let matches = bodies
            .iter()
            .map(|b| answer_of(b.as_ref(), "matches", "score"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        match_rows.push(Row {
            what: "anpi over HTTP",
            how: format!("1 connection, {} queries", matches.len()),
            latency,
            per_second,
            answers: mean(matches.iter().map(Vec::len)),
            errors: 0,
        });

        let points = Arc::new(points.to_vec());
        let picked = Arc::new(picked.to_vec());
        let (latency, per_second, answers, errors) = {
            let (client, points, near_url) = (client.clone(), points.clone(), near_url.clone());
            for_seconds(args.connections, args.seconds, move |_, i| {
                let client = client.clone();
                let url = near_url(points[i % points.len()]);
                async move { Ok(records(get_ok(&client, url).await?.as_ref())) }
            })
            .await?
        };
        near_rows.push(Row {
            what: "anpi over HTTP",
            how: format!("{} connections, {} s", args.connections, args.seconds),
            latency,
            per_second,
            answers,
            errors,
        });
        let (latency, per_second, answers, errors) = {
            let (client, picked, match_url) = (client.clone(), picked.clone(), match_url.clone());
            for_seconds(args.connections, args.seconds, move |_, i| {
                let client = client.clone();
                let url = match_url(&picked[i % picked.len()]);
                async move { Ok(records(get_ok(&client, url).await?.as_ref())) }
            })
            .await?
        };
        match_rows.push(Row {
            what: "anpi over HTTP",
            how: format!("{} connections, {} s", args.connections, args.seconds),
            latency,
            per_second,
            answers,
            errors,
        });

        let claims = claims::run(&base, pool, coordinator, hot_id, args.claimants).await?;
        anyhow::Ok((near, matches, claims))
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: &[(&str, f64)]) -> Answer {
        rows.iter().map(|(id, k)| ((*id).to_owned(), *k)).collect()
    }

    #[test]
    fn answers_agree_when_the_same_or_differing_only_among_equals() {
        let a = answer(&[("a", 10.0), ("b", 20.0), ("c", 30.0)]);
        let reordered = answer(&[("b", 20.0), ("a", 10.0), ("c", 30.0)]);
        assert_eq!(compare(&a, &reordered, METRES), Verdict::Same);
        // "d" is exactly as far as "c": another right answer.
        let tie = answer(&[("a", 10.0), ("b", 20.0), ("d", 30.000_001)]);
        assert_eq!(compare(&a, &tie, METRES), Verdict::Ties);
        let wrong = answer(&[("a", 10.0), ("b", 20.0), ("d", 31.0)]);
        assert_eq!(compare(&a, &wrong, METRES), Verdict::Differ);
        let short = answer(&[("a", 10.0), ("b", 20.0)]);
        assert_eq!(compare(&a, &short, METRES), Verdict::Differ);

        let agreement = Agreement::of(
            &[a.clone(), a.clone(), a.clone()],
            &[reordered, tie, wrong],
            METRES,
        );
        assert_eq!(
            (agreement.compared, agreement.same, agreement.ties),
            (3, 1, 1)
        );
        assert!((agreement.agreeing() - 2.0 / 3.0).abs() < 1e-12);
        assert!((agreement.overlap - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn shared_counts_anpis_records_found_in_the_other_answer() {
        let a = answer(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]);
        let b = answer(&[("d", 1.0), ("x", 2.0), ("a", 3.0)]);
        assert!((shared(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(shared(&[], &[]), 1.0);
        assert_eq!(shared(&[], &b), 0.0);
    }

    #[test]
    fn records_are_counted_by_their_distance_key() {
        let body = br#"{"requests":[{"id":"a","distance_m":1.5},{"id":"b","distance_m":2.0}]}"#;
        assert_eq!(records(body), 2);
        assert_eq!(records(b"{\"requests\":[]}"), 0);
        let parsed = answer_of(body, "requests", "distance_m").expect("parsed");
        assert_eq!(parsed, answer(&[("a", 1.5), ("b", 2.0)]));
        assert!(answer_of(b"{}", "requests", "distance_m").is_err());
    }

    #[test]
    fn timing_each_call_keeps_input_order_across_threads() {
        let inputs: Vec<u32> = (0..1_000).collect();
        let (hist, per_second, out) = each_timed(&inputs, 3, |x| x * 2).expect("timed");
        assert_eq!(hist.len(), 1_000);
        assert!(per_second > 0.0);
        assert_eq!(out, inputs.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
