//! The accept loop: hyper's HTTP/1 connections, each bounded in time and
//! all of them in number, so that slow or silent clients cannot hold
//! sockets for ever and the process never runs out of open files.
//!
//! - A watchdog per connection closes it when no request is in flight and
//!   either a request's headers take longer than the header timeout (from
//!   their first byte) or nothing arrives or leaves for the idle timeout.
//!   hyper's own `header_read_timeout` is not used: its clock starts as
//!   soon as hyper waits for a request, so it would also cut every idle
//!   keep-alive connection at the header timeout.
//! - Request bodies and answers are bounded in the router ([`super::router`]).
//! - Connections are admitted up to a number per address and up to the
//!   open-file limit less a reserve; past either, a bare 503 and close.
//! - An upgraded connection (the live WebSocket) leaves hyper and its
//!   watchdog behind: the live path pings and closes silent clients itself.
//!   Its slot stays taken until the socket closes.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use super::problem::ApiError;
use crate::config::HttpConfig;

/// Open files kept for everything but client connections: the database
/// pool (SQLite opens three files per connection), Redis, the listener,
/// the runtime's own descriptors, logs.
const FILE_RESERVE: u64 = 64;
/// First and longest pause after an accept that failed for want of
/// resources (EMFILE, ENFILE, ENOBUFS…).
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// What a refused client is told to wait, in seconds.
const REFUSED_RETRY_AFTER: u64 = 5;

#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// Accepts connections and serves `router` on them until `shutdown`
/// completes; then stops accepting, lets the requests in flight finish
/// (each is bounded by the timeouts) and returns.
pub async fn run(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let timeouts = Timeouts {
        header: Duration::from_secs(config.header_timeout_secs),
        idle: Duration::from_secs(config.idle_timeout_secs),
    };
    let gate = Arc::new(Gate::new(
        config.max_connections_per_address,
        open_file_capacity(),
    ));
    tracing::info!(
        per_address = gate.per_address,
        capacity = gate.capacity,
        "connection limits"
    );
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took it; nothing is wrong here.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of files or buffers: retrying at once would spin. Wait,
                // longer each time, and say so once per burst.
                let delay = match backoff {
                    None => {
                        tracing::warn!(error = %e, "accept error; backing off until it succeeds");
                        FIRST_BACKOFF
                    }
                    Some(delay) => (delay * 2).min(MAX_BACKOFF),
                };
                backoff = Some(delay);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if backoff.take().is_some() {
            tracing::info!("accepting connections again");
        }
        let slot = match gate.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                refuse(tcp, peer, refusal);
                continue;
            }
        };
        // No Nagle: the live writer already gathers a batch into one write,
        // and holding its tail back for an ACK would only delay the next event.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        connections.spawn(connection(
            tcp,
            slot,
            peer,
            router.clone(),
            timeouts,
            draining.clone(),
        ));
    }
    drop(listener);
    draining.cancel();
    connections.close();
    connections.wait().await;
}

/// Errors of one connection that failed before it was accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Serves one connection until it ends, stalls or, once the server
/// drains, has answered what it was asked.
async fn connection(
    tcp: TcpStream,
    slot: Slot,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    draining: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        tcp,
        activity: activity.clone(),
        _slot: slot,
    });
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // Handlers read the peer address (check-in rate limits).
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = in_service.request_started();
        let mut router = router.clone();
        async move {
            let response = router.call(request).await;
            drop(in_flight);
            response
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog bounds headers instead (see the module's doc).
    http.header_read_timeout(None);
    let mut conn = pin!(http.serve_connection(io, service).with_upgrades());
    let mut draining_started = false;
    loop {
        tokio::select! {
            // Ends after the answer to an upgrade too: the socket has been
            // handed to the upgrade's own task.
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = activity.stalled(timeouts) => {
                tracing::debug!(%peer, "closing a stalled connection");
                return;
            }
            () = draining.cancelled(), if !draining_started => {
                draining_started = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A refused client gets a 503 (so it can tell a full server from a
/// broken one) and the socket is closed at once.
fn refuse(tcp: TcpStream, peer: SocketAddr, refusal: Refusal) {
    metrics::counter!("anpi_http_refused_connections_total", "reason" => refusal.label())
        .increment(1);
    tracing::debug!(%peer, reason = refusal.label(), "connection refused");
    let detail = match refusal {
        Refusal::PerAddress => "too many connections from this network address; retry later",
        Refusal::Capacity => "this instance holds as many connections as it may; retry later",
    };
    let body = serde_json::to_string(
        &ApiError::Unavailable(detail.into(), REFUSED_RETRY_AFTER).to_problem(),
    )
    .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: {REFUSED_RETRY_AFTER}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Read what the client already sent: closing a socket with unread data
    // resets it, which could destroy the answer before the client reads it.
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
    // Never wait on a refused client: what does not fit now is not sent.
    let _ = tcp.try_write(answer.as_bytes());
}

/// How many connections fit under the process's open-file limit, keeping
/// [`FILE_RESERVE`] for the rest (at least half the limit, should the limit
/// be tiny).
fn open_file_capacity() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !read || limit.rlim_cur == libc::RLIM_INFINITY {
        return usize::MAX;
    }
    let files = limit.rlim_cur;
    let capacity = files.saturating_sub(FILE_RESERVE).max(files / 2);
    usize::try_from(capacity).unwrap_or(usize::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    PerAddress,
    Capacity,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per_address",
            Refusal::Capacity => "capacity",
        }
    }
}

/// The connections held, per address and in all.
struct Gate {
    per_address: usize,
    capacity: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Gate {
    fn new(per_address: usize, capacity: usize) -> Gate {
        Gate {
            per_address,
            capacity,
            held: Mutex::default(),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        // An IPv4 client on a dual-stack socket counts as its IPv4 address.
        let ip = ip.to_canonical();
        let mut held = self.held();
        if held.total >= self.capacity {
            return Err(Refusal::Capacity);
        }
        let from_ip = held.by_address.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.per_address {
            return Err(Refusal::PerAddress);
        }
        held.by_address.insert(ip, from_ip + 1);
        held.total += 1;
        Ok(Slot {
            gate: self.clone(),
            ip,
        })
    }
}

/// One admitted connection; its place is freed when the socket is dropped.
struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.gate.held();
        held.total -= 1;
        if let Some(n) = held.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.ip);
            }
        }
    }
}

/// What a connection is doing, as its socket (bytes), its service
/// (requests in flight) and its watchdog see it. Times are milliseconds
/// since `started`.
struct Activity {
    started: Instant,
    /// The last byte read or written, or the last answer made.
    last_io: AtomicU64,
    /// The first byte of a request whose headers are not complete yet.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
}

const NEVER: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(NEVER),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn touched(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes between requests begin the next one's headers. (Bytes of a
        // request pipelined behind one in flight are not seen as such; the
        // idle timeout bounds them.)
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NEVER, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NEVER, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection counts as stalled if nothing happens first;
    /// `None` while a request is in flight (the request and body timeouts
    /// bound those).
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = |ms| self.started + Duration::from_millis(ms);
        match self.head_since.load(Ordering::Relaxed) {
            NEVER => Some(since(self.last_io.load(Ordering::Relaxed)) + timeouts.idle),
            head => Some(since(head) + timeouts.header),
        }
    }

    /// Completes once the connection has stalled.
    async fn stalled(&self, timeouts: Timeouts) {
        loop {
            match self.deadline(timeouts) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => tokio::time::sleep_until(at).await,
                None => tokio::time::sleep(timeouts.idle).await,
            }
        }
    }
}

/// A request being answered; the idle clock starts again when it ends.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touched();
    }
}

/// The socket, noting every byte in its connection's [`Activity`] and
/// holding the connection's [`Slot`].
struct Tracked {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touched();
        }
        poll
    }

    // Passed through: the live writer sends each batch with one vectored write.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touched();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_freed_when_dropped() {
        let gate = Arc::new(Gate::new(2, 3));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::PerAddress));
        let _third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refusal::Capacity));
        drop(first);
        assert!(gate.admit(a).is_ok());
        assert!(gate.held().by_address.len() <= 2);
    }

    #[test]
    fn a_mapped_ipv4_address_counts_as_itself() {
        let gate = Arc::new(Gate::new(1, 10));
        let _v4 = gate.admit("192.0.2.1".parse().unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(gate.admit(mapped).err(), Some(Refusal::PerAddress));
    }

    #[test]
    fn headers_have_the_header_timeout_and_silence_the_idle_one() {
        let timeouts = Timeouts {
            header: Duration::from_secs(2),
            idle: Duration::from_secs(100),
        };
        let activity = Arc::new(Activity::new());
        let at = |ms| activity.started + Duration::from_millis(ms);
        assert_eq!(activity.deadline(timeouts), Some(at(0) + timeouts.idle));
        // The first byte of a request starts the header clock.
        activity.head_since.store(5_000, Ordering::Relaxed);
        assert_eq!(
            activity.deadline(timeouts),
            Some(at(5_000) + timeouts.header)
        );
        // A request in flight has no deadline here, and its body's bytes
        // start no header clock.
        let in_flight = activity.request_started();
        activity.read();
        assert_eq!(activity.deadline(timeouts), None);
        // Answered: idle again, from the answer.
        drop(in_flight);
        let idle = activity.deadline(timeouts).unwrap();
        assert!(idle >= at(0) + timeouts.idle);
        // The next request's first byte.
        activity.read();
        assert!(activity.deadline(timeouts).unwrap() < idle);
    }
}
