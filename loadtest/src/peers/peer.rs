//! The peers themselves: anpi, nchan (nostore, distributed) and Socket.IO,
//! each started as two instances on one Redis, published to over HTTP, and
//! stopped; their processes' CPU and memory from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::PeersArgs;
use crate::report;

/// A municipality with no shelters: anpi's snapshot on subscribing is empty,
/// as the peers send nothing on subscribing.
const BENCH_AREA: &str = "131016";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum PeerKind {
    Anpi,
    NchanNostore,
    NchanDistributed,
    Socketio,
}

impl PeerKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            PeerKind::Anpi => "anpi",
            PeerKind::NchanNostore => "nchan (nostore)",
            PeerKind::NchanDistributed => "nchan (distributed)",
            PeerKind::Socketio => "Socket.IO 4 + Redis adapter",
        }
    }
}

/// Two running instances of one peer.
pub(super) struct Running {
    pub(super) kind: PeerKind,
    children: Vec<Child>,
    pub(super) ports: [u16; 2],
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
    pub(super) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.children.iter().map(Child::id).collect();
        if matches!(
            self.kind,
            PeerKind::NchanNostore | PeerKind::NchanDistributed
        ) {
            pids = report::pids_of("nginx");
        }
        pids
    }

    pub(super) fn cpu_seconds(&self) -> f64 {
        self.pids().into_iter().map(report::cpu_seconds).sum()
    }

    pub(super) fn rss_kib(&self) -> u64 {
        self.pids().into_iter().map(report::rss_kib).sum()
    }

    pub(super) fn protocol(&self) -> &'static str {
        match self.kind {
            PeerKind::Anpi => "anpi-stamped",
            PeerKind::NchanNostore | PeerKind::NchanDistributed => "nchan",
            PeerKind::Socketio => "socketio",
        }
    }

    /// anpi: an area without shelters. The peers: a channel of this run
    /// only, so nothing stored in Redis by an earlier run is delivered.
    pub(super) fn channel(&self) -> String {
        match self.kind {
            PeerKind::Anpi => format!("area:{BENCH_AREA}"),
            _ => format!("bench{}", self.ports[0]),
        }
    }

    pub(super) async fn publish(
        &self,
        client: &reqwest::Client,
        payload: String,
    ) -> anyhow::Result<()> {
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

pub(super) async fn start(kind: PeerKind, args: &PeersArgs) -> anyhow::Result<Running> {
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
                    report::anpi_serve(&args.anpi_bin, port, &url)
                        .env("REDIS_URL", &args.redis)
                        .env("ANPI_SAMPLE_DATA", "false")
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
