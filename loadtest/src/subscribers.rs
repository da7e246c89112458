//! A pool of live subscribers in one process: `anpi-loadtest subscribers`.
//! The fan-out scenario starts one pool per ~19,000 connections (a process
//! may hold 20,000 files) and steers it over stdin/stdout, one JSON line each
//! way:
//!
//! - the pool prints `{"ready":N,"failed":F}` once every connection has its
//!   `subscribed` reply and its snapshot;
//! - `report` → what was received since the last report (then reset);
//! - `count` → deliveries since the last report;
//! - `keep N` → closes connections until N remain;
//! - `stall N` → N connections stop reading (a phone in a tunnel): their
//!   sockets stay open, nothing more is read or counted from them;
//! - `quit` (or end of input) → exits.
//!
//! Latency is publish → receive: the `ts` the broker stamped into the event
//! (wall clock, µs) against this process's wall clock on the same machine.
//!
//! With `--protocol nchan`, `socketio` or `anpi-stamped` the pool speaks to a
//! peer of the surge benchmark instead, and takes sequence number and publish
//! time from the payload, which the publisher writes as `s=<seq> t=<µs> …`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(clap::Args)]
pub struct SubscribersArgs {
    /// The server's address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    server: SocketAddr,
    /// Connections to open.
    #[arg(long)]
    count: usize,
    /// The channel every connection subscribes to.
    #[arg(long, default_value = "area:172022")]
    channel: String,
    /// Local address to connect from (127.0.0.x spreads the ephemeral ports).
    #[arg(long, default_value = "127.0.0.1")]
    source: IpAddr,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// How to subscribe and read: anpi's protocol, or a peer's.
    #[arg(long, value_enum, default_value = "anpi")]
    protocol: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// anpi's `/v1/live`; seq and time from the broker.
    Anpi,
    /// anpi's `/v1/live`; seq and time from the payload.
    AnpiStamped,
    /// nchan: a WebSocket at `/sub/<channel>`, each message a payload.
    Nchan,
    /// Socket.IO 4 (engine.io over WebSocket): join with `sub`, payloads as `m` events.
    Socketio,
}

/// What a pool received between two reports.
#[derive(Serialize, Deserialize, Default)]
pub struct Report {
    pub connected: usize,
    pub deliveries: u64,
    /// anpi's protocol: events whose seq was not the one after the previous.
    /// Stamped payloads (published concurrently, so possibly reordered on
    /// the way): numbers still missing below the highest received, summed
    /// over the connections. Must stay 0.
    pub gaps: u64,
    pub resyncs: u64,
    /// Connections the server closed, by close code (0: no code / reset).
    pub closed: BTreeMap<u16, u64>,
    /// Publish → receive latency in µs: (value, count) pairs.
    pub latency: Vec<(u64, u64)>,
    /// Per event seq: (deliveries, slowest latency in µs).
    pub by_seq: BTreeMap<u64, (u64, u64)>,
}

struct Tally {
    deliveries: u64,
    gaps: u64,
    resyncs: u64,
    closed: BTreeMap<u16, u64>,
    latency: Histogram<u64>,
    by_seq: HashMap<u64, (u64, u64)>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            deliveries: 0,
            gaps: 0,
            resyncs: 0,
            closed: BTreeMap::new(),
            latency: latency_histogram(),
            by_seq: HashMap::new(),
        }
    }
}

/// µs, up to 10 minutes, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The number after `"key":` in an event's or a snapshot's header, which
/// the server writes before the frame's `data`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

pub async fn run(args: SubscribersArgs) -> anyhow::Result<()> {
    let tally = Arc::new(Mutex::new(Tally::new()));
    let url = match args.protocol {
        Protocol::Anpi | Protocol::AnpiStamped => format!("ws://{}/v1/live", args.server),
        Protocol::Nchan => format!("ws://{}/sub/{}", args.server, args.channel),
        Protocol::Socketio => format!("ws://{}/socket.io/?EIO=4&transport=websocket", args.server),
    };
    let subscribe = serde_json::json!({"op": "subscribe", "channels": [args.channel]}).to_string();

    // Open every connection, a bounded number at a time.
    let opened: Vec<anyhow::Result<Connection>> = futures_util::stream::iter(0..args.count)
        .map(|_| open_retrying(&url, &args, &subscribe, tally.clone()))
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let failed = opened.iter().filter(|o| o.is_err()).count();
    if let Some(Err(e)) = opened.iter().find(|o| o.is_err()) {
        eprintln!("subscribers: {failed} connections failed, e.g. {e:#}");
    }
    let mut connections: Vec<Connection> = opened.into_iter().filter_map(Result::ok).collect();
    println!(
        "{}",
        serde_json::json!({"ready": connections.len(), "failed": failed})
    );

    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = commands.next_line().await? {
        let line = line.trim();
        if line == "report" {
            connections.retain(|c| !c.task.is_finished());
            let holes = connections
                .iter()
                .map(|c| c.holes.load(Ordering::Relaxed))
                .sum();
            let report = take_report(&tally, connections.len(), holes);
            println!("{}", serde_json::to_string(&report)?);
        } else if line == "count" {
            let deliveries = tally.lock().expect("tally").deliveries;
            println!("{}", serde_json::json!({"deliveries": deliveries}));
        } else if let Some(n) = line.strip_prefix("keep ") {
            let keep: usize = n.parse().context("keep N")?;
            while connections.len() > keep {
                if let Some(c) = connections.pop() {
                    c.task.abort();
                }
            }
            println!("{}", serde_json::json!({"kept": connections.len()}));
        } else if let Some(n) = line.strip_prefix("stall ") {
            let stall: usize = n.parse().context("stall N")?;
            for c in connections.iter().take(stall) {
                c.stalled.store(true, Ordering::Relaxed);
            }
            println!(
                "{}",
                serde_json::json!({"stalled": stall.min(connections.len())})
            );
        } else if line == "quit" {
            break;
        }
    }
    Ok(())
}

fn take_report(tally: &Mutex<Tally>, connected: usize, holes: u64) -> Report {
    let mut t = tally.lock().expect("tally");
    let taken = std::mem::replace(&mut *t, Tally::new());
    Report {
        connected,
        deliveries: taken.deliveries,
        gaps: taken.gaps + holes,
        resyncs: taken.resyncs,
        closed: taken.closed,
        latency: taken
            .latency
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
        by_seq: taken.by_seq.into_iter().collect(),
    }
}

/// One open connection: its reading task, whether it stopped reading, and
/// the stamped numbers it is missing so far.
struct Connection {
    task: JoinHandle<()>,
    stalled: Arc<AtomicBool>,
    holes: Arc<AtomicU64>,
}

/// Per connection, for stamped payloads: the next number expected and those
/// received ahead of it.
#[derive(Default)]
struct Order {
    next: Option<u64>,
    ahead: BTreeSet<u64>,
}

impl Order {
    fn receive(&mut self, seq: u64) {
        let next = *self.next.get_or_insert(seq);
        if seq == next {
            let mut n = next + 1;
            while self.ahead.remove(&n) {
                n += 1;
            }
            self.next = Some(n);
        } else if seq > next {
            self.ahead.insert(seq);
        }
    }

    /// Numbers missing below the highest received.
    fn holes(&self) -> u64 {
        match (self.next, self.ahead.last()) {
            (Some(next), Some(&max)) => max + 1 - next - self.ahead.len() as u64,
            _ => 0,
        }
    }
}

/// Like a client that is turned away while a server is still starting (nchan
/// answers 503 until its Redis link is up): tries again, three times at most.
async fn open_retrying(
    url: &str,
    args: &SubscribersArgs,
    subscribe: &str,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<Connection> {
    let mut tries = 0;
    loop {
        match open(url, args, subscribe, tally.clone()).await {
            Err(e) if tries < 3 => {
                tries += 1;
                eprintln!("subscribers: connecting again after: {e:#}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            result => return result,
        }
    }
}

/// Connects, subscribes, waits for the snapshot, then leaves a task reading.
async fn open(
    url: &str,
    args: &SubscribersArgs,
    subscribe: &str,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<Connection> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(args.source, 0))?;
    let stream = socket.connect(args.server).await?;
    stream.set_nodelay(true)?;
    // A phone-sized client: small buffers, as the server's.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    let protocol = args.protocol;
    let last_seq = match protocol {
        Protocol::Anpi | Protocol::AnpiStamped => {
            ws.send(Message::text(subscribe)).await?;
            let mut last_seq = None;
            while last_seq.is_none() {
                if let Message::Text(t) =
                    ws.next().await.context("closed before the snapshot")??
                {
                    if t.starts_with(r#"{"op":"snapshot""#) {
                        last_seq = number_after(&t, r#""seq":"#);
                    } else if t.contains(r#""op":"error""#) {
                        anyhow::bail!("{t}");
                    }
                }
            }
            // Payload stamps start afresh.
            last_seq.filter(|_| protocol == Protocol::Anpi)
        }
        // Subscribed once the upgrade is done.
        Protocol::Nchan => None,
        // engine.io open, Socket.IO connect, then join with an acknowledgement.
        Protocol::Socketio => {
            let join = format!(r#"420["sub",{}]"#, serde_json::to_string(&args.channel)?);
            loop {
                let Message::Text(t) = ws.next().await.context("closed while joining")?? else {
                    continue;
                };
                if t.starts_with('0') {
                    ws.send(Message::text("40")).await?;
                } else if t.starts_with("40") {
                    ws.send(Message::text(join.clone())).await?;
                } else if t.starts_with("430") {
                    break None;
                } else if t.as_str() == "2" {
                    ws.send(Message::text("3")).await?;
                }
            }
        }
    };
    let stalled = Arc::new(AtomicBool::new(false));
    let holes = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(read(
        ws,
        protocol,
        last_seq,
        tally,
        stalled.clone(),
        holes.clone(),
    ));
    Ok(Connection {
        task,
        stalled,
        holes,
    })
}

async fn read<S>(
    mut ws: S,
    protocol: Protocol,
    mut last_seq: Option<u64>,
    tally: Arc<Mutex<Tally>>,
    stalled: Arc<AtomicBool>,
    holes: Arc<AtomicU64>,
) where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
{
    let mut order = Order::default();
    let code = loop {
        match ws.next().await {
            Some(Ok(_)) if stalled.load(Ordering::Relaxed) => {
                // Keep the socket open and read nothing more: the server's
                // buffers (or its policy for slow clients) take it from here.
                std::future::pending::<()>().await;
            }
            Some(Ok(Message::Text(t))) => {
                let received = now_us();
                let delivery = match protocol {
                    Protocol::Anpi if t.starts_with(r#"{"op":"event""#) => {
                        Some((number_after(&t, r#""seq":"#), number_after(&t, r#""ts":"#)))
                    }
                    Protocol::Anpi => None,
                    Protocol::AnpiStamped if !t.starts_with(r#"{"op":"event""#) => None,
                    Protocol::Socketio if t.as_str() == "2" => {
                        let _ = ws.send(Message::text("3")).await;
                        None
                    }
                    _ => number_after(&t, "s=").map(|seq| (Some(seq), number_after(&t, "t="))),
                };
                if let Some((seq, ts)) = delivery {
                    let latency = ts.map(|ts| received.saturating_sub(ts)).unwrap_or(0);
                    let mut tally = tally.lock().expect("tally");
                    tally.deliveries += 1;
                    if protocol == Protocol::Anpi {
                        if let (Some(seq), Some(last)) = (seq, last_seq)
                            && seq != last + 1
                        {
                            tally.gaps += 1;
                        }
                        last_seq = seq;
                    } else if let Some(seq) = seq {
                        order.receive(seq);
                        holes.store(order.holes(), Ordering::Relaxed);
                    }
                    let _ = tally.latency.record(latency.max(1));
                    if let Some(seq) = seq {
                        let entry = tally.by_seq.entry(seq).or_default();
                        entry.0 += 1;
                        entry.1 = entry.1.max(latency);
                    }
                } else if protocol == Protocol::Anpi && t.starts_with(r#"{"op":"snapshot""#) {
                    last_seq = number_after(&t, r#""seq":"#);
                } else if t.contains(r#""op":"resync""#) {
                    tally.lock().expect("tally").resyncs += 1;
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)).unwrap_or(0),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break 0,
        }
    };
    *tally.lock().expect("tally").closed.entry(code).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::{Order, number_after};

    /// The gaps one connection reports after receiving these stamps in turn.
    fn holes_after(stamps: &[u64]) -> u64 {
        let mut order = Order::default();
        for &seq in stamps {
            order.receive(seq);
        }
        order.holes()
    }

    #[test]
    fn in_order_stamps_leave_no_gap() {
        assert_eq!(holes_after(&[]), 0);
        assert_eq!(holes_after(&[1, 2, 3, 4, 5]), 0);
        // A connection counts from the first stamp it sees.
        assert_eq!(holes_after(&[41, 42, 43]), 0);
    }

    #[test]
    fn a_stamp_still_missing_is_one_gap() {
        assert_eq!(holes_after(&[1, 2, 4, 5]), 1);
        assert_eq!(holes_after(&[1, 4]), 2);
        assert_eq!(holes_after(&[1, 3, 5, 7]), 3);
    }

    #[test]
    fn reordered_stamps_within_a_burst_are_no_gap() {
        assert_eq!(holes_after(&[1, 3, 2, 4]), 0);
        assert_eq!(holes_after(&[1, 2, 5, 4, 3, 6]), 0);
        // Missing only until the late one arrives.
        assert_eq!(holes_after(&[1, 2, 4]), 1);
        assert_eq!(holes_after(&[1, 2, 4, 3]), 0);
    }

    #[test]
    fn repeated_and_earlier_stamps_change_nothing() {
        assert_eq!(holes_after(&[1, 2, 3, 2, 1, 3]), 0);
        assert_eq!(holes_after(&[1, 2, 4, 4, 2]), 1);
    }

    #[test]
    fn numbers_are_read_from_headers_and_stamped_payloads() {
        let event = r#"{"op":"event","seq":1234,"ts":1700000000000001,"data":{}}"#;
        assert_eq!(number_after(event, r#""seq":"#), Some(1234));
        assert_eq!(number_after(event, r#""ts":"#), Some(1_700_000_000_000_001));
        let payload = "s=17 t=1700000000123456 xxxxxxxx";
        assert_eq!(number_after(payload, "s="), Some(17));
        assert_eq!(number_after(payload, "t="), Some(1_700_000_000_123_456));
        assert_eq!(number_after(payload, "q="), None);
        assert_eq!(number_after("s=x", "s="), None);
    }
}
