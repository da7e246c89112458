//! Frames the live endpoint cannot take: too big, text that is not UTF-8,
//! protocol violations. Each is answered with a close frame whose code says
//! why (1009, 1007, 1002), never with a silently dropped connection. Sent by
//! real clients: tungstenite where it will send the frame, and a client
//! written by hand on a plain TCP stream where it will not.

mod common;

use std::time::Duration;

use common::ws::Ws;
use common::{Backend, TestApp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_backends!(
    a_message_over_64_kib_is_closed_with_1009,
    text_that_is_not_utf8_is_closed_with_1007,
    protocol_violations_are_closed_with_1002,
);

/// A guard against a hang, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(15);

/// Opcodes and flags of a frame's first byte (RFC 6455 §5.2).
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// A WebSocket client written by hand, to send what a library refuses to.
struct Raw {
    tcp: TcpStream,
}

impl Raw {
    /// Does the upgrade handshake on a plain TCP stream.
    async fn connect(base: &str) -> Raw {
        let addr = base.trim_start_matches("http://");
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // The key and its accept value are the example of RFC 6455 §1.3.
        let request = format!(
            "GET /v1/live HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        // Byte by byte, so that nothing after the response head is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.expect("a response head"));
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let accept = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-accept")
                .then(|| value.trim())
        });
        assert_eq!(accept, Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        Raw { tcp }
    }

    /// Sends one frame whose first byte is `first` (flags and opcode),
    /// masked as a client must unless `masked` is false.
    async fn send(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut frame = vec![first];
        match payload.len() {
            n if n < 126 => frame.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                frame.push(mask_bit | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            frame.extend(key);
            frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        } else {
            frame.extend(payload);
        }
        self.tcp.write_all(&frame).await.unwrap();
    }

    /// Reads frames until the server's close frame: its code and reason.
    async fn close_frame(&mut self) -> (u16, String) {
        let read = async {
            loop {
                let mut head = [0u8; 2];
                self.tcp
                    .read_exact(&mut head)
                    .await
                    .expect("a close frame before the connection ends");
                assert_eq!(head[1] & 0x80, 0, "a server never masks");
                let len = match head[1] & 0x7f {
                    126 => usize::from(self.tcp.read_u16().await.unwrap()),
                    127 => self.tcp.read_u64().await.unwrap() as usize,
                    n => usize::from(n),
                };
                let mut payload = vec![0; len];
                self.tcp.read_exact(&mut payload).await.unwrap();
                if head[0] & 0x0f == CLOSE {
                    assert!(len >= 2, "the close frame carries a code");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
                }
            }
        };
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("a close frame within the patience limit")
    }
}

/// The service still serves a new connection.
async fn still_serving(app: &TestApp) {
    let mut ws = Ws::connect(&app.base).await;
    ws.send(json!({"op": "ping", "id": "still"})).await;
    assert_eq!(ws.expect("pong").await["id"], "still");
}

async fn a_message_over_64_kib_is_closed_with_1009(backend: Backend) {
    let app = TestApp::start(backend).await;

    // One 70 KiB text frame, from tungstenite.
    let mut ws = Ws::connect(&app.base).await;
    ws.send_text(&"x".repeat(70 * 1024)).await;
    assert_eq!(ws.closed().await, Some(1009));

    // A message of two 40 KiB fragments: each frame fits, the whole does not.
    let mut raw = Raw::connect(&app.base).await;
    let half = vec![b'x'; 40 * 1024];
    raw.send(TEXT, &half, true).await;
    raw.send(FIN | CONTINUATION, &half, true).await;
    let (code, reason) = raw.close_frame().await;
    assert_eq!(code, 1009, "{reason}");
    assert!(!reason.is_empty());

    still_serving(&app).await;
    app.stop().await;
}

async fn text_that_is_not_utf8_is_closed_with_1007(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases: [&[(u8, &[u8])]; 2] = [
        // One frame.
        &[(FIN | TEXT, b"{\"op\":\"ping\xff\xfe\"}")],
        // Two fragments: a valid start of "あ", then a byte that breaks it.
        &[(TEXT, b"{\"op\":\"\xe3\x81"), (FIN | CONTINUATION, b"(\"}")],
    ];
    for frames in cases {
        let mut raw = Raw::connect(&app.base).await;
        for (first, payload) in frames {
            raw.send(*first, payload, true).await;
        }
        let (code, reason) = raw.close_frame().await;
        assert_eq!(code, 1007, "{frames:?}: {reason}");
        assert!(!reason.is_empty());
    }
    still_serving(&app).await;
    app.stop().await;
}

async fn protocol_violations_are_closed_with_1002(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ping = br#"{"op":"ping"}"#;
    // (what is wrong, first byte, masked)
    let cases = [
        ("an unmasked client frame", FIN | TEXT, false),
        ("RSV1 set, no extension agreed", FIN | RSV1 | TEXT, true),
        ("a reserved opcode", FIN | 0x3, true),
        ("a fragmented control frame", PING, true),
        (
            "a continuation with nothing to continue",
            FIN | CONTINUATION,
            true,
        ),
    ];
    for (what, first, masked) in cases {
        let mut raw = Raw::connect(&app.base).await;
        raw.send(first, ping, masked).await;
        let (code, reason) = raw.close_frame().await;
        assert_eq!(code, 1002, "{what}: {reason}");
        assert!(!reason.is_empty());
    }
    still_serving(&app).await;
    app.stop().await;
}
