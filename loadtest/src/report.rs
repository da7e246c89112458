//! What every scenario's report shares: the machine it ran on, the server it
//! started and what that used (/proc, `perf stat`), and its section of
//! `BENCHMARKS.md`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use sqlx::Connection;

/// The `ANPI_SECRET` every benchmark's anpi runs with (never production's).
pub const BENCH_SECRET: &str = "62656e63682d6f6e6c792d6e6f742d666f722d70726f64756374696f6e2d2d2d";

/// An office token for `municipality`, made with `anpi token create` on the
/// database at `database_url`.
pub fn office_token(
    anpi_bin: &Path,
    database_url: &str,
    municipality: &str,
    name: &str,
) -> anyhow::Result<String> {
    let out = Command::new(anpi_bin)
        .args([
            "token",
            "create",
            "--municipality",
            municipality,
            "--name",
            name,
        ])
        .env("DATABASE_URL", database_url)
        .env("ANPI_SECRET", BENCH_SECRET)
        .output()
        .with_context(|| format!("running {}", anpi_bin.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "anpi token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// `anpi serve` on 127.0.0.1:`port` with the database at `database_url`,
/// the benchmark secret and warnings-only logs; the caller adds its own
/// settings and starts it.
pub fn anpi_serve(anpi_bin: &Path, port: u16, database_url: &str) -> Command {
    let mut command = Command::new(anpi_bin);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("ANPI_SECRET", BENCH_SECRET)
        // Up to 9,500 subscribers share one source address.
        .env("ANPI_MAX_CONNECTIONS_PER_ADDRESS", "20000")
        .env("RUST_LOG", "warn");
    command
}

/// Drops and makes database `name` (one of the benchmarks' own, a plain
/// identifier) on the PostgreSQL server of `admin_url`; the new database's URL.
pub async fn fresh_database(admin_url: &str, name: &'static str) -> anyhow::Result<String> {
    anyhow::ensure!(
        name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "not a plain database name: {name}"
    );
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await?;
    let (server, _) = admin_url
        .rsplit_once('/')
        .context("a PostgreSQL URL ends with /database")?;
    Ok(format!("{server}/{name}"))
}

/// The first line a command prints, or nothing.
pub fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// "Run <date> on <cores> cores (<cpu>), <memory>, <kernel>; anpi <commit>".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1_048_576.0;
    format!(
        "Run {} on {} cores ({cpu}), {mem_gib:.0} GiB, {}; anpi {}",
        command_line("date", &["-u", "+%Y-%m-%d"]),
        command_line("nproc", &[]),
        command_line("uname", &["-sr"]),
        command_line("git", &["rev-parse", "--short", "HEAD"]),
    )
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits for `GET /readyz` to answer 200.
pub async fn wait_ready(port: u16) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..600 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").await?;
            let mut reply = String::new();
            s.read_to_string(&mut reply).await?;
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the anpi server did not become ready in 60 s")
}

/// Replaces the scenario's section of BENCHMARKS.md (between
/// `<!-- name:begin -->` and `<!-- name:end -->`), keeping the rest.
pub fn write_section(name: &str, section: &str) -> anyhow::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let path = "BENCHMARKS.md";
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEvery number here comes with the command that produced it, the machine, and the peer measured in the same run. Rerun a section with its command.\n\n".to_owned()
    });
    let block = format!("{begin}\n{section}\n{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

/// User + system CPU seconds a process has used so far (0 once it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name in parentheses; utime and stime are
    // the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The running processes named `comm` (e.g. all of PostgreSQL's).
pub fn pids_of(comm: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// CPU seconds used so far by every running process named `comm`.
pub fn cpu_seconds_of(comm: &str) -> f64 {
    pids_of(comm).into_iter().map(cpu_seconds).sum()
}

/// A process's resident memory, KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const WRITE_SYSCALLS: &str = "syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg";

/// Counts the write-family syscalls of these processes until `stop_perf`.
pub fn start_perf(pids: &[u32]) -> anyhow::Result<tokio::process::Child> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    tokio::process::Command::new("perf")
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
pub async fn stop_perf(perf: tokio::process::Child) -> anyhow::Result<u64> {
    let pid = perf.id().context("perf pid")?;
    Command::new("kill")
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
        anyhow::bail!("perf stat did not count write syscalls:\n{text}");
    }
    Ok(counts.iter().sum())
}
