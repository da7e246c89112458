//! Stories: connections that stall, trickle or pile up are closed or refused,
//! and the service keeps answering everyone else. Real sockets on a real
//! server, with short timeouts; about the HTTP layer only, so on SQLite.

mod common;

use std::time::Duration;

use anpi::config::ServeConfig;
use common::procs::Instance;
use common::ws::Ws;
use common::{Backend, TestApp, TestDb};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout, timeout_at};

/// How long a test waits for the server to close or answer before it
/// fails (a guard against a hang, not a performance assertion).
const PATIENCE: Duration = Duration::from_secs(30);

/// A service whose timeouts are seconds, not tens of seconds.
async fn impatient(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = common::config(&db, true);
    config.http.header_timeout_secs = 1;
    config.http.idle_timeout_secs = 2;
    config.http.body_timeout_secs = 2;
    configure(&mut config);
    TestApp::with_config(db, config).await
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("TCP connect")
}

/// Waits for the server to close the socket; what it sent before.
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the socket open; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `pieces` one a second until the server closes the socket; what
/// it sent before.
async fn trickle(stream: &mut TcpStream, pieces: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for piece in pieces {
        if stream.write_all(&piece).await.is_err() {
            return got;
        }
        // The pause between pieces, watching for the close meanwhile.
        let pause = Instant::now() + Duration::from_secs(1);
        while let Ok(read) = timeout_at(pause, stream.read(&mut buf)).await {
            match read {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }
    panic!(
        "still open after every piece was sent; the server sent {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// One `GET` on an open connection, kept alive; the status line and body.
async fn get_on(stream: &mut TcpStream, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: anpi\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("a content-length");
            if body.len() >= length {
                let status = head.lines().next().unwrap_or_default().to_owned();
                return (status, body.to_owned());
            }
        }
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!("no whole answer to GET {path}: {other:?}, got {text:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_sends_nothing_is_closed() {
    let app = impatient(|_| {}).await;
    let mut socket = connect(&app.base).await;
    let got = closed_by_server(&mut socket).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_line_is_closed() {
    let app = impatient(|_| {}).await;
    let mut socket = connect(&app.base).await;
    socket.write_all(b"GET /healthz HT").await.unwrap();
    closed_by_server(&mut socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_past_the_header_timeout_are_closed() {
    let app = impatient(|_| {}).await;
    let mut socket = connect(&app.base).await;
    let lines = std::iter::once(b"GET /healthz HTTP/1.1\r\n".to_vec())
        .chain((0..30).map(|i| format!("x-slow-{i}: 1\r\n").into_bytes()));
    let got = trickle(&mut socket, lines).await;
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "answered headers that never ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_the_body_timeout_gets_408() {
    let app = impatient(|_| {}).await;
    let mut socket = connect(&app.base).await;
    // A check-in reads its body before anything else.
    socket
        .write_all(
            b"POST /v1/incidents/nonesuch/checkins HTTP/1.1\r\nHost: anpi\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let got = trickle(&mut socket, (0..30).map(|_| b" ".to_vec())).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_fifty_slow_sockets_are_held() {
    // Timeouts long enough that the slow sockets stay for the whole test.
    let app = impatient(|config| {
        config.http.header_timeout_secs = 120;
        config.http.idle_timeout_secs = 120;
    })
    .await;
    let mut held = Vec::new();
    for i in 0..50 {
        let mut socket = connect(&app.base).await;
        let start: &[u8] = match i % 3 {
            0 => b"",
            1 => b"GET /healthz HT",
            _ => b"GET /healthz HTTP/1.1\r\nx-slow: 1\r\n",
        };
        socket.write_all(start).await.unwrap();
        held.push(socket);
    }
    let answer = timeout(PATIENCE, app.client.get(app.url("/healthz")).send())
        .await
        .expect("an answer while slow sockets are held")
        .expect("GET /healthz");
    assert_eq!(answer.status(), 200);
    // They were held, not closed, all along.
    let mut buf = [0u8; 16];
    for socket in &mut held {
        assert!(
            timeout(Duration::from_millis(10), socket.read(&mut buf))
                .await
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = impatient(|config| config.http.idle_timeout_secs = 5).await;
    let mut socket = connect(&app.base).await;
    let (status, _) = get_on(&mut socket, "/healthz").await;
    assert!(status.contains(" 200 "), "{status}");
    // Idle past the header timeout: still open, as it is not sending
    // headers, only keeping the connection.
    sleep(Duration::from_secs(2)).await;
    let (status, _) = get_on(&mut socket, "/healthz").await;
    assert!(status.contains(" 200 "), "{status}");
    let got = closed_by_server(&mut socket).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_websocket_outlives_the_idle_timeout() {
    let app = impatient(|_| {}).await;
    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe(json!({"id": "1", "channels": ["area:172022"]}))
        .await;
    ws.expect("snapshot").await;
    // Silent for more than twice the idle timeout (2 s), below the live
    // path's own ping interval.
    sleep(Duration::from_secs(5)).await;
    ws.send(json!({"op": "ping", "id": "after"})).await;
    let pong = ws.expect("pong").await;
    assert_eq!(pong["id"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_per_address_cap_a_connection_is_refused() {
    let app = impatient(|config| {
        config.http.idle_timeout_secs = 60;
        config.http.max_connections_per_address = 5;
    })
    .await;
    let mut five = Vec::new();
    for _ in 0..5 {
        five.push(connect(&app.base).await);
    }
    let mut sixth = connect(&app.base).await;
    let refused = String::from_utf8_lossy(&closed_by_server(&mut sixth).await).into_owned();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 5"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");
    for socket in &mut five {
        let (status, _) = get_on(socket, "/healthz").await;
        assert!(status.contains(" 200 "), "{status}");
    }
    // Once they close, their places are free again, and the refusal counted.
    drop(five);
    let deadline = Instant::now() + PATIENCE;
    let metrics = loop {
        match app.client.get(app.url("/metrics")).send().await {
            Ok(answer) if answer.status() == 200 => break answer,
            _ => assert!(
                Instant::now() < deadline,
                "no place freed after the five closed"
            ),
        }
        sleep(Duration::from_millis(100)).await;
    };
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"anpi_http_refused_connections_total{reason="per_address"}"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_at_its_open_file_limit_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("anpi.db").display()),
        ),
        ("ANPI_HEADER_TIMEOUT", "1".to_owned()),
        ("ANPI_IDLE_TIMEOUT", "2".to_owned()),
    ];
    let mut instance = Instance::start_with_file_limit(256, &env);
    // More idle sockets than the process may open files.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect(&instance.base).await);
    }
    // Each is refused at once or closed when idle; none is left hanging.
    let mut refused = 0;
    for socket in &mut idle {
        if closed_by_server(socket).await.starts_with(b"HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "300 sockets under a 256-file limit, none refused"
    );
    // A fresh connection is answered, and the process is alive.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = client
            .get(format!("{}/healthz", instance.base))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "/healthz never answered");
        sleep(Duration::from_millis(200)).await;
    }
    let metrics = common::metrics(&instance.base).await;
    assert!(
        metrics.contains(r#"anpi_http_refused_connections_total{reason="capacity"}"#),
        "{metrics}"
    );
    assert!(instance.is_running(), "the process died");
    // Refused in time: it never ran out of files, so never spun on accept.
    let accept_errors = instance
        .log()
        .iter()
        .filter(|l| l.contains("accept error"))
        .count();
    assert!(accept_errors <= 3, "{accept_errors} accept errors logged");
}
