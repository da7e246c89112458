//! The geo scenario: the nearest 5 open tsunami shelters with room, among
//! shelters spread like Japan's, answered by anpi in process, by anpi over
//! HTTP (driven by wrk), and by PostGIS KNN (`<->` on a GiST index) — same
//! shelters, same query points, same run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anpi::domain::shelter::{Hazard, LatLon, ShelterStatus};
use anpi::geoindex::{ShelterFilter, ShelterIndex};
use anpi::import::{SnapshotRow, StatusSnapshot};
use anpi::store::{Actor, Store};
use anyhow::Context;
use hdrhistogram::Histogram;
use sqlx::postgres::PgPoolOptions;

use crate::report;
use crate::synthetic::{self, Rng};

#[derive(clap::Args)]
pub struct GeoArgs {
    /// Shelters to generate (Japan designates about 110,000 sites).
    #[arg(long, default_value_t = 110_000)]
    shelters: usize,
    /// Query points for the sequential measurements.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Seconds of load for wrk and for the concurrent PostGIS run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// PostgreSQL with PostGIS available (a database `anpi_bench_geo` is made there).
    #[arg(
        long,
        env = "ANPI_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// The anpi server binary (a release build).
    #[arg(long, default_value = "target/release/anpi")]
    anpi_bin: PathBuf,
    /// Where to put the SQLite file and the wrk script.
    #[arg(long, default_value = "target/bench-geo")]
    work_dir: PathBuf,
}

const K: usize = 5;

fn filter() -> ShelterFilter {
    ShelterFilter {
        hazard: Some(Hazard::Tsunami),
        statuses: vec![ShelterStatus::Open],
        has_room: true,
        municipality: None,
    }
}

struct Row {
    name: &'static str,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    per_second: f64,
    how: String,
}

pub async fn run(args: GeoArgs) -> anyhow::Result<()> {
    let mut rng = Rng::new(args.seed);
    let shelters = synthetic::shelters(args.shelters, &mut rng);
    let points: Vec<LatLon> = (0..args.queries)
        .map(|_| synthetic::populated_point(&mut rng))
        .collect();
    let mut rows = Vec::new();

    // anpi in process.
    let started = Instant::now();
    let index = ShelterIndex::new(shelters.clone());
    let build = started.elapsed();
    let mut hist = histogram();
    let mut anpi_answers = Vec::new();
    let started = Instant::now();
    for p in &points {
        let t = Instant::now();
        let hits = index.nearest(*p, K, &filter());
        hist.record(t.elapsed().as_nanos() as u64)?;
        anpi_answers.push(
            hits.iter()
                .map(|(s, _)| s.site.id.clone())
                .collect::<BTreeSet<_>>(),
        );
    }
    let elapsed = started.elapsed();
    rows.push(row(
        "anpi in process (R-tree)",
        &hist,
        args.queries as f64 / elapsed.as_secs_f64(),
        "1 thread, sequential",
    ));

    // PostGIS.
    let (postgis_rows, agreement, versions) =
        postgis(&args, &shelters, &points, &anpi_answers).await?;
    rows.extend(postgis_rows);

    // anpi over HTTP.
    rows.push(http(&args, &shelters, &points).await?);

    let section = markdown(&args, build, &rows, agreement, &versions);
    println!("{section}");
    report::write_section("geo", &section)?;
    Ok(())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

fn row(name: &'static str, h: &Histogram<u64>, per_second: f64, how: &str) -> Row {
    Row {
        name,
        p50_us: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: h.value_at_quantile(0.99) as f64 / 1000.0,
        max_us: h.max() as f64 / 1000.0,
        per_second,
        how: how.to_owned(),
    }
}

const KNN: &str = "select id from bench_shelter where status = 'open' and tsunami and occupancy < capacity \
                   order by geog <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography limit 5";

async fn postgis(
    args: &GeoArgs,
    shelters: &[anpi::domain::shelter::Shelter],
    points: &[LatLon],
    anpi_answers: &[BTreeSet<String>],
) -> anyhow::Result<(Vec<Row>, f64, String)> {
    let url = report::fresh_database(&args.postgres, "anpi_bench_geo").await?;
    let pool = PgPoolOptions::new()
        .max_connections(64)
        .connect(&url)
        .await?;
    sqlx::query("create extension if not exists postgis")
        .execute(&pool)
        .await?;
    sqlx::query(
        "create table bench_shelter (id text primary key, status text not null, occupancy int not null, \
         capacity int not null, tsunami boolean not null, geog geography(Point, 4326) not null)",
    )
    .execute(&pool)
    .await?;
    let mut copy = String::new();
    for s in shelters {
        let at = s.site.location.expect("synthetic shelters have a location");
        writeln!(
            copy,
            "{}\t{}\t{}\t{}\t{}\tSRID=4326;POINT({} {})",
            s.site.id,
            s.live.status.name(),
            s.live.occupancy,
            s.site.capacity.indoor.unwrap_or(0),
            s.site.hazards.contains(Hazard::Tsunami),
            at.lon,
            at.lat
        )?;
    }
    let mut conn = pool.acquire().await?;
    let mut sink = conn.copy_in_raw("copy bench_shelter from stdin").await?;
    sink.send(copy.into_bytes()).await?;
    sink.finish().await?;
    drop(conn);
    sqlx::query("create index bench_shelter_geog on bench_shelter using gist (geog)")
        .execute(&pool)
        .await?;
    sqlx::query("analyze bench_shelter").execute(&pool).await?;
    let versions: String =
        sqlx::query_scalar("select version() || ' / PostGIS ' || postgis_lib_version()")
            .fetch_one(&pool)
            .await?;

    // Sequential, one connection, the same points.
    let mut hist = histogram();
    let mut agree = 0usize;
    let compared = points.len().min(2_000);
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    for (i, p) in points.iter().enumerate() {
        let t = Instant::now();
        let ids: Vec<String> = sqlx::query_scalar(KNN)
            .bind(p.lon)
            .bind(p.lat)
            .fetch_all(&mut *conn)
            .await?;
        hist.record(t.elapsed().as_nanos() as u64)?;
        if i < compared && ids.into_iter().collect::<BTreeSet<_>>() == anpi_answers[i] {
            agree += 1;
        }
    }
    let sequential = row(
        "PostGIS KNN (GiST, geography)",
        &hist,
        points.len() as f64 / started.elapsed().as_secs_f64(),
        "1 connection, sequential",
    );
    drop(conn);

    // Throughput: 64 connections for the same time wrk gets.
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for c in 0..64usize {
        let pool = pool.clone();
        let points = points.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut i = c * 97;
            while Instant::now() < deadline {
                let p = points[i % points.len()];
                let t = Instant::now();
                let _: Vec<String> = sqlx::query_scalar(KNN)
                    .bind(p.lon)
                    .bind(p.lat)
                    .fetch_all(&pool)
                    .await?;
                hist.record(t.elapsed().as_nanos() as u64)?;
                i += 1;
            }
            anyhow::Ok(hist)
        }));
    }
    let started = Instant::now();
    let mut all = histogram();
    for t in tasks {
        all.add(t.await??)?;
    }
    let concurrent = row(
        "PostGIS KNN (GiST, geography)",
        &all,
        all.len() as f64 / started.elapsed().as_secs_f64(),
        "64 connections",
    );
    pool.close().await;
    Ok((
        vec![sequential, concurrent],
        agree as f64 / compared as f64,
        versions,
    ))
}

async fn http(
    args: &GeoArgs,
    shelters: &[anpi::domain::shelter::Shelter],
    points: &[LatLon],
) -> anyhow::Result<Row> {
    std::fs::create_dir_all(&args.work_dir)?;
    let db = args.work_dir.join("geo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let url = format!("sqlite://{}", db.display());
    // The same write paths an office uses: a registry import, then a status snapshot.
    let store = Store::connect(&url).await?;
    let sites = shelters
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u64 + 2, s.site.clone()))
        .collect();
    store
        .import_sites(&Actor::Operator("benchmark"), sites, None)
        .await?;
    let snapshot = StatusSnapshot {
        as_of: None,
        rows: shelters
            .iter()
            .filter(|s| s.live.status != ShelterStatus::Closed)
            .map(|s| SnapshotRow {
                line: 0,
                id: s.site.id.clone(),
                occupancy: s.live.occupancy,
                site: s.site.clone(),
            })
            .collect(),
        problems: vec![],
    };
    let municipality = shelters[0].site.municipality.clone();
    store
        .apply_status_snapshot(
            &Actor::Operator("benchmark"),
            &municipality,
            snapshot,
            false,
        )
        .await?;
    store.close().await;

    let port = report::free_port()?;
    let mut server = Command::new(&args.anpi_bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("ANPI_SAMPLE_DATA", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.anpi_bin.display()))?;
    let result = async {
        report::wait_ready(port).await?;
        let script = args.work_dir.join("geo.lua");
        let mut lua = String::from("local points = {\n");
        for p in points.iter().take(5_000) {
            writeln!(lua, "{{\"{:.5}\",\"{:.5}\"}},", p.lat, p.lon)?;
        }
        lua.push_str(
            "}\nlocal i = 0\nrequest = function()\n  i = i % #points + 1\n  local p = points[i]\n  \
             return wrk.format(\"GET\", \"/v1/shelters?near=\" .. p[1] .. \",\" .. p[2] .. \
             \"&limit=5&hazard=tsunami&status=open&has_room=true\")\nend\n",
        );
        std::fs::write(&script, lua)?;
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c64",
                &format!("-d{}s", args.seconds),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("http://127.0.0.1:{port}"))
            .output()
            .context("running wrk")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
        parse_wrk(&text)
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Requests/s and the latency distribution from wrk's `--latency` output.
fn parse_wrk(text: &str) -> anyhow::Result<Row> {
    let field = |prefix: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix))?;
        let value = line.trim_start()[prefix.len()..]
            .split_whitespace()
            .next()?;
        duration_us(value).or_else(|| value.parse().ok())
    };
    let per_second = field("Requests/sec:").context("no Requests/sec in wrk output")?;
    Ok(Row {
        name: "anpi over HTTP (wrk)",
        p50_us: field("50%").context("no p50")?,
        p99_us: field("99%").context("no p99")?,
        max_us: text
            .lines()
            .find(|l| l.trim_start().starts_with("Latency"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(duration_us)
            .unwrap_or(f64::NAN),
        per_second,
        how: "wrk -t2 -c64, keep-alive".into(),
    })
}

fn duration_us(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

fn markdown(
    args: &GeoArgs,
    build: Duration,
    rows: &[Row],
    agreement: f64,
    versions: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Geo: nearest 5 open tsunami shelters with room\n");
    let _ = writeln!(
        s,
        "{}; {versions}; {}.\n",
        report::machine(),
        report::command_line("wrk", &["-v"])
            .lines()
            .next()
            .unwrap_or("wrk")
            .split(" [")
            .next()
            .unwrap_or("wrk"),
    );
    let _ = writeln!(
        s,
        "Command: `loadtest/run-geo` (= `anpi-loadtest geo --shelters {} --queries {} --seed {} --seconds {}`).\n",
        args.shelters, args.queries, args.seed, args.seconds
    );
    let _ = writeln!(
        s,
        "{} synthetic shelters clustered around Japan's population centres (40% tsunami-designated, 30% open, some full); the same {} query points for everyone. Index build (by insertion): {:.0} ms.\n",
        args.shelters,
        args.queries,
        build.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        s,
        "| what | how | p50 | p99 | max | per second |\n|---|---|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} µs | {:.1} µs | {:.0} µs | {:.0} |",
            r.name, r.how, r.p50_us, r.p99_us, r.max_us, r.per_second
        );
    }
    let _ = writeln!(
        s,
        "\nSame top-5 set from anpi and PostGIS for {:.1}% of the first 2,000 queries (anpi measures on a sphere, PostGIS geography on the spheroid: near-equal candidates can swap).\n\n\
         Caveats: two cores shared by the load generator, the server and PostgreSQL; loopback only. The in-process row is the index alone; \
         the HTTP row adds parsing, JSON and the socket; PostGIS rows include the client round trip over loopback.",
        agreement * 100.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::{duration_us, parse_wrk};

    /// What `wrk -t2 -c64 -d10s --latency` prints.
    const WRK: &str = "\
Running 10s test @ http://127.0.0.1:40111/v1/shelters/nearest?lat=35.68&lon=139.76&limit=5
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.31ms  842.17us  21.53ms   91.27%
    Req/Sec    25.47k     1.86k   29.12k    72.50%
  Latency Distribution
     50%    1.12ms
     75%    1.48ms
     90%    2.05ms
     99%    4.37ms
  506712 requests in 10.00s, 412.88MB read
Requests/sec:  50661.94
Transfer/sec:     41.28MB
";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn wrk_output_gives_rate_percentiles_and_max() {
        let row = parse_wrk(WRK).expect("parsed");
        assert!(close(row.per_second, 50_661.94), "{}", row.per_second);
        assert!(close(row.p50_us, 1_120.0), "{}", row.p50_us);
        assert!(close(row.p99_us, 4_370.0), "{}", row.p99_us);
        // The max column of the thread stats' Latency line.
        assert!(close(row.max_us, 21_530.0), "{}", row.max_us);
    }

    #[test]
    fn wrk_output_without_a_rate_is_an_error() {
        let cut: String = WRK
            .lines()
            .filter(|l| !l.starts_with("Requests/sec:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = parse_wrk(&cut).err().expect("no rate");
        assert!(err.to_string().contains("Requests/sec"), "{err}");
        assert!(parse_wrk("").is_err());
    }

    #[test]
    fn wrk_durations_in_microseconds() {
        assert_eq!(duration_us("842.17us"), Some(842.17));
        assert!(close(duration_us("4.37ms").expect("ms"), 4_370.0));
        assert_eq!(duration_us("1.50s"), Some(1_500_000.0));
        assert_eq!(duration_us("91.27%"), None);
        assert_eq!(duration_us("25.47k"), None);
    }
}
