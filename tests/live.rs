//! Live updates against the running service, with real WebSocket clients:
//! subscribe by area and by place, snapshot then deltas, error frames,
//! recovery with `since`, a client that stops reading, the connection cap.

mod common;

use std::time::Duration;

use common::procs::{self, Instance};
use common::ws::Ws;
use common::{Backend, TestApp, TestDb};
use futures_util::SinkExt;
use serde_json::{Value, json};

on_both_backends!(area_snapshot_then_every_change_in_order);

const NANAO: &str = "172022";

/// A located Nanao shelter: (id, lat, lon).
async fn some_shelter(app: &TestApp) -> (String, f64, f64) {
    let (status, body) = app
        .get_json("/v1/shelters?near=37.0432,136.9674&limit=1")
        .await;
    assert_eq!(status, 200);
    let s = &body["shelters"][0];
    (
        s["id"].as_str().unwrap().to_owned(),
        s["location"]["lat"].as_f64().unwrap(),
        s["location"]["lon"].as_f64().unwrap(),
    )
}

async fn set_occupancy(app: &TestApp, token: &str, id: &str, occupancy: i64) {
    let r = app
        .patch_as(
            token,
            &format!("/v1/shelters/{id}"),
            json!({"occupancy": occupancy}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn area_snapshot_then_every_change_in_order(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let (id, _, _) = some_shelter(&app).await;

    let mut ws = Ws::connect(&app.base).await;
    let subscribed = ws
        .subscribe(json!({"id": "1", "channels": [format!("area:{NANAO}")]}))
        .await;
    assert_eq!(subscribed["id"], "1");
    let listed = &subscribed["channels"][0];
    assert_eq!(listed["channel"], "area:172022");
    let start = listed["seq"].as_u64().unwrap();

    let snapshot = ws.expect("snapshot").await;
    assert_eq!(snapshot["kind"], "shelter.snapshot");
    assert_eq!(snapshot["seq"], start);
    let shelters = snapshot["data"]["shelters"].as_array().unwrap();
    assert_eq!(shelters.len(), 112, "every Nanao shelter");

    for (i, occupancy) in [5, 9, 14].into_iter().enumerate() {
        set_occupancy(&app, &token, &id, occupancy).await;
        let event = ws.expect("event").await;
        assert_eq!(event["channel"], "area:172022");
        assert_eq!(event["seq"], start + 1 + i as u64);
        assert_eq!(event["kind"], "shelter.updated");
        assert_eq!(event["data"]["id"], id.as_str());
        assert_eq!(event["data"]["occupancy"], occupancy);
        assert_eq!(event["epoch"], listed["epoch"]);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_by_place_gets_the_covering_cells() {
    let app = TestApp::start(Backend::Sqlite).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let (id, lat, lon) = some_shelter(&app).await;

    let mut ws = Ws::connect(&app.base).await;
    let subscribed = ws
        .subscribe(json!({"id": 7, "near": {"lat": lat, "lon": lon, "radius_m": 2000}}))
        .await;
    assert_eq!(subscribed["id"], 7);
    let channels: Vec<String> = subscribed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(channels.len() >= 3, "{channels:?}");
    assert!(channels.iter().all(|c| c.starts_with("cell:")));

    // One snapshot per cell; together they hold the shelter.
    let mut seen_shelter_in = None;
    for _ in &channels {
        let snap = ws.expect("snapshot").await;
        let ids: Vec<&str> = snap["data"]["shelters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        if ids.contains(&id.as_str()) {
            seen_shelter_in = Some(snap["channel"].as_str().unwrap().to_owned());
        }
    }
    let cell = seen_shelter_in.expect("the shelter is in one of the cells");

    set_occupancy(&app, &token, &id, 3).await;
    let event = ws.expect("event").await;
    assert_eq!(event["channel"], cell.as_str());
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["data"]["occupancy"], 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_get_error_frames_and_the_socket_stays_open() {
    let app = TestApp::start(Backend::Sqlite).await;
    let mut ws = Ws::connect(&app.base).await;

    let cases: [(Value, &str); 8] = [
        (json!("{not json"), "not JSON"),
        (json!({"id": "a", "op": "subscrib"}), "unknown variant"),
        (json!({"id": "b"}), "op"),
        (json!({"id": "c", "op": "subscribe"}), "needs"),
        (
            json!({"id": "d", "op": "subscribe", "channels": ["area:172021"]}),
            "check digit",
        ),
        (
            json!({"id": "e", "op": "subscribe", "channels": ["weather:1"]}),
            "unknown channel kind",
        ),
        (
            json!({"id": "f", "op": "subscribe", "near": {"lat": 95, "lon": 136, "radius_m": 10}}),
            "near",
        ),
        (
            json!({"id": "g", "op": "subscribe", "near": {"lat": 37, "lon": 136, "radius_m": 1e9}}),
            "radius_m",
        ),
    ];
    for (command, says) in cases {
        match &command {
            Value::String(raw) => ws.send_text(raw).await,
            other => ws.send(other.clone()).await,
        }
        let error = ws.expect("error").await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{command} → {message}");
        if let Some(id) = command.get("id") {
            assert_eq!(&error["id"], id);
        }
    }
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1, 2, 3,
        ]))
        .await
        .unwrap();
    assert!(
        ws.expect("error").await["message"]
            .as_str()
            .unwrap()
            .contains("binary")
    );

    ws.send(json!({"op": "ping", "id": "p"})).await;
    assert_eq!(ws.expect("pong").await["id"], "p");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_since_gets_exactly_the_missed_events() {
    let app = TestApp::start(Backend::Sqlite).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let (id, _, _) = some_shelter(&app).await;
    let area = format!("area:{NANAO}");

    let mut ws = Ws::connect(&app.base).await;
    let sub = ws.subscribe(json!({"channels": [&area]})).await;
    ws.expect("snapshot").await;
    set_occupancy(&app, &token, &id, 1).await;
    let seen = ws.expect("event").await;
    let (seq, epoch) = (seen["seq"].as_u64().unwrap(), seen["epoch"].clone());
    assert_eq!(epoch, sub["channels"][0]["epoch"]);
    drop(ws); // the phone loses its network

    for occupancy in [2, 3, 4] {
        set_occupancy(&app, &token, &id, occupancy).await;
    }
    app.wait_published().await; // missed while away, not received live

    let mut ws = Ws::connect(&app.base).await;
    let sub = ws
        .subscribe(json!({"channels": [&area], "since": {&area: {"seq": seq, "epoch": epoch}}}))
        .await;
    assert_eq!(sub["channels"][0]["recovered"], true);
    assert_eq!(sub["channels"][0]["seq"], seq + 3);
    for (i, occupancy) in [2, 3, 4].into_iter().enumerate() {
        let event = ws.expect("event").await; // no snapshot first
        assert_eq!(event["seq"], seq + 1 + i as u64);
        assert_eq!(event["data"]["occupancy"], occupancy);
    }
    // Then live again, in sequence.
    set_occupancy(&app, &token, &id, 5).await;
    assert_eq!(ws.expect("event").await["seq"], seq + 4);

    // A plain number works too (without the epoch check).
    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe(json!({"channels": [&area], "since": {&area: seq + 2}}))
        .await;
    assert_eq!(ws.expect("event").await["seq"], seq + 3);
    assert_eq!(ws.expect("event").await["seq"], seq + 4);

    // A stream the server never numbered (another epoch): resync, snapshot.
    let mut ws = Ws::connect(&app.base).await;
    let sub = ws
        .subscribe(
            json!({"channels": [&area], "since": {&area: {"seq": 2, "epoch": "feedfeedfeedfeed"}}}),
        )
        .await;
    assert_eq!(sub["channels"][0]["recovered"], false);
    assert_eq!(ws.expect("resync").await["channel"], area.as_str());
    let snap = ws.expect("snapshot").await;
    assert_eq!(snap["seq"], seq + 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_events_no_longer_held_mean_resync_and_a_fresh_snapshot() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = common::config(&db, true);
    config.live.history_size = 2;
    let app = TestApp::with_config(db, config).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let (id, _, _) = some_shelter(&app).await;
    let area = format!("area:{NANAO}");

    let mut ws = Ws::connect(&app.base).await;
    let sub = ws.subscribe(json!({"channels": [&area]})).await;
    let (seq, epoch) = (
        sub["channels"][0]["seq"].as_u64().unwrap(),
        sub["channels"][0]["epoch"].clone(),
    );
    drop(ws);
    for occupancy in [7, 8, 9] {
        set_occupancy(&app, &token, &id, occupancy).await;
    }
    app.wait_published().await; // missed while away, not received live
    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe(json!({"channels": [&area], "since": {&area: {"seq": seq, "epoch": epoch}}}))
        .await;
    assert_eq!(ws.expect("resync").await["channel"], area.as_str());
    let snap = ws.expect("snapshot").await;
    assert_eq!(snap["seq"], seq + 3);
    let shelter = snap["data"]["shelters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        shelter["occupancy"], 9,
        "the snapshot holds the latest state"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_the_others_get_everything() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = common::config(&db, true);
    config.live.queue = 16;
    let app = TestApp::with_config(db, config).await;
    let area = format!("area:{NANAO}");

    let mut stalled = Ws::connect(&app.base).await;
    stalled.subscribe(json!({"channels": [&area]})).await;
    stalled.expect("snapshot").await;
    let mut healthy = Ws::connect(&app.base).await;
    healthy.subscribe(json!({"channels": [&area]})).await;
    let start = healthy.expect("snapshot").await["seq"].as_u64().unwrap();

    // 400 events of 32 KB: far more than the socket buffers and a 16-frame
    // queue hold for a client that reads nothing.
    let blob = "x".repeat(32 * 1024);
    let publisher = {
        let live = app.state.live.clone();
        let area = anpi::live::channel::Channel::parse(&area).unwrap();
        tokio::spawn(async move {
            for i in 0..400 {
                live.publish_direct(&area, "test.bulk", &json!({"i": i, "blob": blob}))
                    .await
                    .unwrap();
                // A real publisher (the outbox relay) waits on the database
                // between batches; one that never yields would starve the
                // healthy client's writer on this two-thread runtime.
                tokio::task::yield_now().await;
            }
        })
    };
    for i in 0..400u64 {
        let event = healthy.expect("event").await;
        assert_eq!(event["seq"], start + 1 + i);
        assert_eq!(event["data"]["i"], i);
    }
    publisher.await.unwrap();

    // The stalled client was let go with the "too slow" code (or, if even
    // the close frame could not be written, its socket was dropped).
    let mut received = 0;
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(15),
            futures_util::StreamExt::next(&mut stalled.stream),
        )
        .await
        {
            Err(_) => panic!("the stalled client was never closed"),
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_)))) => received += 1,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f)))) => {
                break f.map(|f| u16::from(f.code));
            }
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => break None,
        }
    };
    assert!(
        received < 400,
        "the stalled client cannot have had everything"
    );
    if let Some(code) = code {
        assert_eq!(code, anpi::live::conn::CLOSE_TOO_SLOW);
    }
    let metrics = common::metrics(&app.base).await;
    assert!(
        metrics.contains("anpi_live_slow_clients_total"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_clean_503() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = common::config(&db, true);
    config.live.max_connections = 2;
    let app = TestApp::with_config(db, config).await;
    let mut a = Ws::connect(&app.base).await;
    let _b = Ws::connect(&app.base).await;
    match Ws::try_connect(&app.base).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        Err(other) => panic!("expected a 503, got {other}"),
        Ok(_) => panic!("a third connection was admitted past the cap of 2"),
    }
    // A place frees up when a client leaves.
    a.stream.close(None).await.unwrap();
    drop(a);
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(ws) = Ws::try_connect(&app.base).await {
            admitted = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = admitted.expect("admitted once a place was free");
    c.send(json!({"op": "ping"})).await;
    c.expect("pong").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_and_closes_are_answered() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let app = TestApp::start(Backend::Sqlite).await;
    let mut ws = Ws::connect(&app.base).await;
    ws.stream
        .send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(15), ws.stream.next())
        .await
        .expect("an answer")
        .expect("open")
        .expect("readable");
    assert_eq!(pong, Message::Pong("are you there".into()));

    ws.stream
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    assert_eq!(ws.closed().await, Some(1001), "the close code echoed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_get_is_told_this_is_a_websocket_endpoint() {
    let app = TestApp::start(Backend::Sqlite).await;
    let response = app.client.get(app.url("/v1/live")).send().await.unwrap();
    let problem = common::expect_problem(response, 400).await;
    assert!(
        problem.to_string().contains("Upgrade: websocket"),
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_subscriber_gets_a_snapshot_with_the_latest_change() {
    let app = TestApp::start(Backend::Sqlite).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let (id, _, _) = some_shelter(&app).await;
    let area = json!({"channels": [format!("area:{NANAO}")]});
    let occupancy_in = |snapshot: &Value| {
        snapshot["data"]["shelters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .map(|s| s["occupancy"].clone())
    };

    // Two subscribers at one position share a snapshot…
    let mut first = Ws::connect(&app.base).await;
    first.subscribe(area.clone()).await;
    let before = first.expect("snapshot").await;
    let mut second = Ws::connect(&app.base).await;
    second.subscribe(area.clone()).await;
    assert_eq!(second.expect("snapshot").await, before);

    // …and a change moves the position, so the next one gets a new snapshot.
    set_occupancy(&app, &token, &id, 77).await;
    let event = first.expect("event").await;
    let mut third = Ws::connect(&app.base).await;
    third.subscribe(area).await;
    let after = third.expect("snapshot").await;
    assert_eq!(after["seq"], event["seq"]);
    assert_eq!(occupancy_in(&after), Some(json!(77)));
    app.stop().await;
}

/// The value of an unlabelled metric in `/metrics` of the service at `base`.
async fn metric(base: &str, name: &str) -> f64 {
    let text = common::metrics(base).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls `/metrics` until `name` is `wanted` (a bounded wait for the server
/// to catch up, not a timing assertion).
async fn until_metric(base: &str, name: &str, wanted: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = metric(base, name).await;
        if value == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is still {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client with a tiny receive window, so that the server's writes to it
/// block soon once it stops reading.
async fn stalling_client(base: &str) -> Ws {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (stream, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/v1/live"),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    Ws { stream }
}

/// Every way a connection ends, many times over, against the service as a
/// real process: client closes with and without a code, resets, plain
/// drops, and a client closed by the server for being too slow. Nothing
/// panics, every connection is let go, and the process still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_connection_ends_leaves_the_service_without_a_panic() {
    use tokio_tungstenite::MaybeTlsStream;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    const EACH: usize = 6;
    let db = TestDb::new(Backend::Sqlite).await;
    // A small queue, so the client that stops reading overflows it soon.
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("ANPI_LIVE_QUEUE", "4".to_owned()),
    ];
    let mut instance = Instance::start(&env);
    let base = instance.base.clone();
    let token = procs::token(&db.url, NANAO);
    let http = reqwest::Client::new();
    let area = json!({"channels": [format!("area:{NANAO}")]});

    let mut closers = Vec::new();
    for code in [Some(1000), Some(1001), Some(4000), None] {
        for _ in 0..EACH {
            let mut ws = Ws::connect(&base).await;
            ws.subscribe(area.clone()).await;
            closers.push((code, ws));
        }
    }
    // Resets and drops, half of them with a snapshot on its way to them (so
    // the writer may be the one to find the socket gone).
    let mut resets = Vec::new();
    let mut drops = Vec::new();
    for i in 0..2 * EACH {
        for gone in [&mut resets, &mut drops] {
            let mut ws = Ws::connect(&base).await;
            if i % 2 == 0 {
                let mut command = area.clone();
                command["op"] = json!("subscribe");
                ws.send(command).await;
            }
            gone.push(ws);
        }
    }
    // The stalled client asks for snapshot after snapshot (more than the
    // socket buffers hold) and reads none of them.
    let mut stalled = stalling_client(&base).await;
    for _ in 0..100 {
        let mut command = area.clone();
        command["op"] = json!("subscribe");
        stalled.send(command).await;
    }
    let total = closers.len() + resets.len() + drops.len() + 1;
    assert_eq!(metric(&base, "anpi_live_connections").await, total as f64);

    // News for it too: its queue overflows and the server lets it go.
    let mut posted = 0;
    while metric(&base, "anpi_live_slow_clients_total").await < 1.0 {
        assert!(posted < 1000, "the stalled client was never let go");
        for _ in 0..5 {
            let r = http
                .post(format!("{base}/v1/municipalities/{NANAO}/announcements"))
                .bearer_auth(&token)
                .json(&json!({"text": "給水車が市役所に到着しました。"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            posted += 1;
        }
    }
    let code = stalled.closed().await;
    assert!(matches!(code, None | Some(4008)), "{code:?}");

    for (code, mut ws) in closers {
        let frame = code.map(|c: u16| CloseFrame {
            code: c.into(),
            reason: "bye".into(),
        });
        ws.stream.close(frame).await.unwrap();
        // A close without a code is answered with 1000 (normal).
        assert_eq!(
            ws.closed().await,
            Some(code.unwrap_or(1000)),
            "the close code echoed"
        );
    }
    for ws in resets {
        let MaybeTlsStream::Plain(tcp) = ws.stream.get_ref() else {
            unreachable!("plain TCP")
        };
        // SO_LINGER 0: closing sends a TCP reset, no close frame, no FIN.
        tcp.set_zero_linger().unwrap();
        drop(ws);
    }
    drop(drops);

    until_metric(&base, "anpi_live_connections", 0.0).await;
    assert!(instance.is_running(), "the service is still running");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let log = instance.stop();
    assert!(!log.contains("panicked"), "the service panicked:\n{log}");
}
