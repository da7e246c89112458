//! The physical ceiling of this machine for fan-out: one small WebSocket
//! frame per `write` syscall, round-robin over N loopback sockets whose other
//! ends a second process (`drain`) reads as fast as it can. No server logic,
//! no queues, no protocol parsing: what every peer's deliveries per second are
//! measured against.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncReadExt;

use crate::report;

#[derive(clap::Args)]
pub struct CeilingArgs {
    /// Loopback sockets written to, round-robin.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Payload bytes per frame (a 2- or 4-byte WebSocket header is added).
    #[arg(long, default_value_t = 100)]
    bytes: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Only print the section; leave BENCHMARKS.md alone.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct DrainArgs {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    connections: usize,
}

/// An unmasked server-to-client text frame carrying `len` bytes.
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x81];
    match len {
        0..=125 => f.push(len as u8),
        _ => {
            f.push(126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    f.resize(f.len() + len, b'x');
    f
}

pub async fn run(args: CeilingArgs) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut drain = Command::new(std::env::current_exe()?)
        .args(["drain", "--port", &port.to_string()])
        .args(["--connections", &args.sockets.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the drain process")?;
    let mut sockets = Vec::with_capacity(args.sockets);
    for _ in 0..args.sockets {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        sockets.push(s);
    }
    let frame = frame(args.bytes);
    let cpu_before = (
        report::cpu_seconds(std::process::id()),
        report::cpu_seconds(drain.id()),
    );
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut sends = 0u64;
    // Blocking writes, one syscall each: a full socket buffer waits for the
    // reader, as a real server's send would.
    while Instant::now() < until {
        for s in &mut sockets {
            s.write_all(&frame)?;
        }
        sends += sockets.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (
        report::cpu_seconds(std::process::id()) - cpu_before.0,
        report::cpu_seconds(drain.id()) - cpu_before.1,
    );
    drop(sockets);
    let mut received = String::new();
    BufReader::new(drain.stdout.take().context("drain stdout")?).read_line(&mut received)?;
    drain.wait()?;
    let received: u64 = received.trim().parse().context("the drain's byte count")?;
    anyhow::ensure!(
        received == sends * frame.len() as u64,
        "sent {} bytes, the drain read {received}",
        sends * frame.len() as u64
    );

    let per_second = sends as f64 / elapsed;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## The syscall ceiling: one frame per write to N loopback sockets\n"
    );
    let _ = writeln!(s, "{}.\n", report::machine());
    let _ = writeln!(
        s,
        "Command: `anpi-loadtest ceiling --sockets {} --bytes {} --seconds {}`.\n",
        args.sockets, args.bytes, args.seconds
    );
    let _ = writeln!(
        s,
        "One process writes a {}-byte WebSocket frame ({} bytes of payload) with one `write` per frame, round-robin over {} loopback TCP sockets; a second process reads them all (tokio, 64 KiB reads). Every byte sent was read.\n",
        frame.len(),
        args.bytes,
        args.sockets
    );
    let _ = writeln!(
        s,
        "| sockets | frames/s | CPU s per million frames: writer / reader |\n|---:|---:|---:|\n| {} | {:.0} | {:.2} / {:.2} |",
        args.sockets,
        per_second,
        cpu.0 * 1e6 / sends as f64,
        cpu.1 * 1e6 / sends as f64
    );
    println!("{s}");
    if !args.dry_run {
        report::write_section("ceiling", &s)?;
    }
    Ok(())
}

/// Connects `connections` sockets and reads them until each is closed;
/// prints the bytes read.
pub async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", args.port)).await?;
        let total = total.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        total.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    println!("{}", total.load(Ordering::Relaxed));
    Ok(())
}
