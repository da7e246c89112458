//! Real processes for multi-instance tests: `redis-server` (one, or a
//! three-node cluster) and `anpi` instances started from the built binary.
//! A missing `redis-server` fails the test with a message; `ops/test`
//! installs it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port nothing listens on now (and, for cluster nodes, its bus port
/// +10000 too).
pub fn free_port(with_bus: bool) -> u16 {
    for _ in 0..1000 {
        let port = if with_bus {
            let mut b = [0u8; 2];
            getrandom::fill(&mut b).unwrap();
            20_000 + u16::from_le_bytes(b) % 25_000
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && (!with_bus || free(port + 10_000)) {
            return port;
        }
    }
    panic!("no free port found");
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (ops/test installs redis-tools/redis-server)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One `redis-server` that keeps nothing on disk.
pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_with(free_port(false), Vec::new())
    }

    fn start_with(port: u16, extra: Vec<String>) -> Redis {
        let mut redis = Redis {
            port,
            dir: tempfile::tempdir().unwrap(),
            extra,
            child: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (ops/test installs it)");
        self.child = Some(child);
        let port = self.port;
        wait_for("redis-server", || {
            redis_cli(port, &["ping"]).is_some_and(|o| o.contains("PONG"))
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: gone at once, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three masters, no replicas, slots spread by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let port = free_port(true);
                Redis::start_with(
                    port,
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new("redis-cli").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for n in &nodes {
            wait_for("cluster state ok", || {
                redis_cli(n.port, &["cluster", "info"])
                    .is_some_and(|o| o.contains("cluster_state:ok"))
            });
        }
        RedisCluster { nodes }
    }

    /// `host:port,host:port,host:port` for `ANPI_REDIS_CLUSTER`.
    pub fn addrs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An `anpi serve` process on port 0.
pub struct Instance {
    pub base: String,
    child: Child,
    /// Everything the process wrote, stdout and stderr, line by line.
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Instance {
    /// Starts `anpi` with the given environment and waits until it listens.
    pub fn start(env: &[(&str, String)]) -> Instance {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_anpi")), env)
    }

    /// [`Instance::start`] with at most `files` open files (set by
    /// `prlimit`, from util-linux).
    pub fn start_with_file_limit(files: u64, env: &[(&str, String)]) -> Instance {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={files}:{files}"))
            .arg(env!("CARGO_BIN_EXE_anpi"));
        Self::spawn(cmd, env)
    }

    fn spawn(mut cmd: Command, env: &[(&str, String)]) -> Instance {
        cmd.env("ANPI_LISTEN", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("ANPI_REDIS_CLUSTER")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("anpi starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps the log; the first "listening" line names the address.
        // Warnings, errors and all of stderr (panics) are echoed so a failing
        // test shows what the instance said.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stdout_log = log.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in stdout.lines().map_while(Result::ok) {
                stdout_log.lock().unwrap().push_str(&format!("{line}\n"));
                if !sent
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["fields"]["message"] == "listening"
                {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                    sent = true;
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("{line}");
                }
            }
        });
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let stderr_log = log.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                stderr_log.lock().unwrap().push_str(&format!("{line}\n"));
                eprintln!("{line}");
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("anpi logs the address it listens on");
        Instance {
            base: format!("http://{addr}"),
            child,
            log,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// The process id (to read `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now, in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the instance's /proc status is readable (Linux)");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the process can be asked")
            .is_none()
    }

    /// Kills the process and returns everything it wrote (read to the end:
    /// nothing it wrote before it died is missing).
    pub fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log.lock().unwrap().clone()
    }

    /// The lines it has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `anpi token create` against a database.
pub fn token(database_url: &str, municipality: &str) -> String {
    create_token(
        database_url,
        &["--municipality", municipality, "--name", "test office"],
    )
}

/// `anpi token create --role coordinator` against a database.
pub fn coordinator_token(database_url: &str, municipality: &str, org: &str) -> String {
    create_token(
        database_url,
        &[
            "--municipality",
            municipality,
            "--role",
            "coordinator",
            "--org",
            org,
        ],
    )
}

fn create_token(database_url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_anpi"))
        .args(["token", "create"])
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
