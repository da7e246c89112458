//! The fan-out scenario's anpi server (SQLite, in-process bus or Redis) and
//! the office posting shelter updates to it through the real API.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

use super::FanoutArgs;
use crate::report;

/// The server process: its pid for /proc, its address.
pub(super) struct Server {
    child: std::process::Child,
    pub(super) port: u16,
}

impl Server {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn rss_kib(&self) -> u64 {
        report::rss_kib(self.pid())
    }

    /// User + system CPU seconds so far.
    pub(super) fn cpu_seconds(&self) -> f64 {
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
pub(super) struct Office {
    client: reqwest::Client,
    base: String,
    token: String,
    /// The area's shelters: (id, name, lat, lon).
    shelters: Vec<(String, String, f64, f64)>,
    next: AtomicU64,
    pub(super) failures: AtomicU64,
}

impl Office {
    pub(super) async fn update(&self) {
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
    pub(super) async fn upload(&self, open: usize) {
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

pub(super) async fn start_server(args: &FanoutArgs) -> anyhow::Result<Server> {
    std::fs::create_dir_all(&args.work_dir)?;
    let db = args.work_dir.join("fanout.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let port = report::free_port()?;
    let mut command =
        report::anpi_serve(&args.anpi_bin, port, &format!("sqlite://{}", db.display()));
    command
        .env("ANPI_LIVE_MAX_CONNECTIONS", (args.hold + 100).to_string())
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
pub(super) async fn office(args: &FanoutArgs, base: &str) -> anyhow::Result<Office> {
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
