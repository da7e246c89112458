//! `anpi replay`: the 118 Nanao snapshots posted through the office API while
//! a resident watches the area live; what the watcher ends up seeing is what
//! the database holds.

mod common;

use std::collections::BTreeMap;

use common::ws::Ws;
use common::{Backend, TestApp};
use serde_json::{Value, json};

on_both_backends!(replaying_nanao_is_watched_live);

const AREA: &str = "area:172022";

/// A shelter as a watcher knows it: (status, occupancy).
type Board = BTreeMap<String, (String, i64)>;

fn apply(board: &mut Board, shelter: &Value) {
    board.insert(
        shelter["id"].as_str().expect("id").to_owned(),
        (
            shelter["status"].as_str().expect("status").to_owned(),
            shelter["occupancy"].as_i64().expect("occupancy"),
        ),
    );
}

async fn replaying_nanao_is_watched_live(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &["172022"]).await;

    let mut watcher = Ws::connect(&app.base).await;
    watcher.subscribe(json!({"channels": [AREA]})).await;
    let snapshot = watcher.expect("snapshot").await;
    let mut seq = snapshot["seq"].as_u64().unwrap();
    let mut board = Board::new();
    for shelter in snapshot["data"]["shelters"].as_array().unwrap() {
        apply(&mut board, shelter);
    }

    // As fast as it goes: the pauses are scaled to nothing.
    let history = common::geodata().join("history");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_anpi"))
        .args(["replay", history.to_str().unwrap(), "--to", &app.base])
        .args(["--speed", "1e12", "--max-pause", "0"])
        .env("ANPI_TOKEN", &token)
        .output()
        .await
        .expect("run anpi replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let posted: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per snapshot"))
        .collect();
    assert_eq!(posted.len(), 118, "{stderr}");
    assert!(posted.iter().all(|p| p["applied"] == true));
    let moments: Vec<&str> = posted
        .iter()
        .map(|p| p["as_of"].as_str().unwrap())
        .collect();
    assert!(moments.is_sorted(), "posted in time order");
    assert_eq!(moments[0], "2024-01-09T09:00:00Z", "the first, 18:00 JST");

    // Where the area's sequence stands now (every event published), as a
    // newcomer is told.
    app.wait_published().await;
    let mut newcomer = Ws::connect(&app.base).await;
    let reply = newcomer.subscribe(json!({"channels": [AREA]})).await;
    let last = reply["channels"][0]["seq"].as_u64().unwrap();
    assert!(last > seq + 118, "every snapshot changed shelters");

    // The watcher got every change, once and in order.
    while seq < last {
        let event = watcher.expect("event").await;
        assert_eq!(event["seq"], seq + 1, "no gap, no repeat");
        seq += 1;
        if event["kind"] == "shelter.updated" {
            apply(&mut board, &event["data"]);
        }
    }

    let stored: Board = {
        let mut b = Board::new();
        let (status, body) = app
            .get_json("/v1/shelters?municipality=172022&limit=1000")
            .await;
        assert_eq!(status, 200);
        for shelter in body["shelters"].as_array().unwrap() {
            apply(&mut b, shelter);
        }
        b
    };
    assert_eq!(board, stored, "the watcher's board is the database's");
    let open = board.values().filter(|(s, _)| s != "closed").count() as u64;
    assert_eq!(open, posted.last().unwrap()["open"].as_u64().unwrap());
    app.stop().await;
}
