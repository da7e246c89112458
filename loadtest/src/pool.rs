//! The steering end of `anpi-loadtest subscribers`: a subscriber pool child
//! process, the commands it is sent over stdin, and its JSON replies merged
//! across pools. Used by the `fanout`, `peers` and `surge` scenarios.

use std::process::Stdio;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::subscribers::{Report, latency_histogram};

/// One subscriber pool process.
pub(crate) struct Pool {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Pool {
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

    /// Tells the pool to quit, without waiting for it.
    pub(crate) async fn tell_quit(&mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
    }

    /// Tells the pool to quit and waits until its process has exited.
    pub(crate) async fn quit_and_wait(&mut self) {
        self.ask("quit").await.ok();
        let _ = self.child.wait().await;
    }

    pub(crate) async fn report(&mut self) -> anyhow::Result<Report> {
        Ok(serde_json::from_value(self.ask("report").await?)?)
    }

    /// Deliveries counted by every pool since its last report.
    pub(crate) async fn count_all(pools: &mut [Pool]) -> anyhow::Result<u64> {
        let mut delivered = 0;
        for pool in pools {
            delivered += pool.ask("count").await?["deliveries"].as_u64().unwrap_or(0);
        }
        Ok(delivered)
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
    pub(crate) report: Report,
    pub(crate) latency: Histogram<u64>,
}
