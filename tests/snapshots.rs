//! Replaying the 118 real Nanao snapshots (January–September 2024) through
//! the office API leaves exactly the open set and headcounts of the last one.

mod common;

use std::collections::BTreeMap;

use common::{Backend, TestApp};
use serde_json::Value;

on_both_backends!(
    replaying_every_snapshot_leaves_the_last_state,
    a_preview_says_what_would_change_and_changes_nothing
);

/// ID → headcount, read from a snapshot file independently of the importer.
fn open_set(path: &std::path::Path) -> BTreeMap<String, i64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let count_col = header.iter().position(|h| h.starts_with("人数")).unwrap();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols[0].to_owned(), cols[count_col].parse().unwrap())
        })
        .collect()
}

async fn replaying_every_snapshot_leaves_the_last_state(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &["172022"]).await;
    let mut files: Vec<_> = std::fs::read_dir(common::geodata().join("history"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 118);

    let mut last_as_of = String::new();
    for file in &files {
        let r = app
            .upload_as(
                &token,
                "/v1/municipalities/172022/shelter-status",
                "text/csv",
                std::fs::read(file).unwrap(),
            )
            .await;
        let status = r.status();
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{}: {outcome}", file.display());
        assert_eq!(outcome["applied"], true);
        assert_eq!(
            outcome["problems"].as_array().unwrap().len(),
            0,
            "{}",
            file.display()
        );
        last_as_of = outcome["as_of"].as_str().unwrap().to_owned();
    }
    // 2024-09-02 18:00 JST.
    assert_eq!(last_as_of, "2024-09-02T09:00:00Z");

    let expected = open_set(files.last().unwrap());
    let (_, body) = app.get_json("/v1/shelters?limit=1000").await;
    let shelters = body["shelters"].as_array().unwrap();
    let open: BTreeMap<String, i64> = shelters
        .iter()
        .filter(|s| s["status"] == "open" || s["status"] == "full")
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["occupancy"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(open, expected);
    for s in shelters {
        if !expected.contains_key(s["id"].as_str().unwrap()) {
            assert_eq!(s["status"], "closed", "{}", s["id"]);
            assert_eq!(s["occupancy"], 0);
        } else {
            assert_eq!(s["as_of"], "2024-09-02T09:00:00Z");
        }
    }
    // The ad-hoc sites of the earthquake (NEW…) were added along the way.
    assert!(shelters.iter().any(|s| s["id"] == "NEW002"));
    // Every listed snapshot change is in the audit trail.
    let history: Value = app
        .get_as(&token, "/v1/shelters/CC0000000518/history")
        .await
        .json()
        .await
        .unwrap();
    assert!(history["events"].as_array().unwrap().len() > 2);
    app.stop().await;
}

async fn a_preview_says_what_would_change_and_changes_nothing(backend: Backend) {
    let app = TestApp::start_closed(backend).await;
    let token = app.token("Nanao HQ", &["172022"]).await;
    let history = common::geodata().join("history");
    let first = history.join("open_shelter_Nanao-shi_2024-01-09-1800.csv");
    let second = history.join("open_shelter_Nanao-shi_2024-01-11-1800.csv");
    let upload = |path: &'static str, file: std::path::PathBuf| {
        let (app, token) = (&app, &token);
        async move {
            let r = app
                .upload_as(token, path, "text/csv", std::fs::read(file).unwrap())
                .await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    const PREVIEW: &str = "/v1/municipalities/172022/shelter-status?preview=true";
    const APPLY: &str = "/v1/municipalities/172022/shelter-status";
    let before = app
        .get_json("/v1/shelters?municipality=172022&limit=1000")
        .await
        .1;

    let preview = upload(PREVIEW, first.clone()).await;
    assert_eq!(preview["applied"], false);
    let expected = open_set(&first);
    let changes = preview["changes"].as_array().unwrap();
    assert_eq!(changes.len(), expected.len(), "every listed shelter opens");
    for c in changes {
        // Open, or full where the headcount reaches the capacity.
        assert!(["open", "full"].contains(&c["status_after"].as_str().unwrap()));
        assert_eq!(
            c["occupancy_after"].as_i64().unwrap(),
            expected[c["id"].as_str().unwrap()]
        );
    }
    let unchanged = app
        .get_json("/v1/shelters?municipality=172022&limit=1000")
        .await
        .1;
    assert_eq!(before, unchanged, "a preview changes nothing");

    // Applied, then the next day's preview lists openings, closings and
    // recounts, and applying it does exactly that.
    assert_eq!(upload(APPLY, first).await["applied"], true);
    let preview = upload(PREVIEW, second.clone()).await;
    let applied = upload(APPLY, second).await;
    assert_eq!(preview["changes"], applied["changes"]);
    assert!(
        applied["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status_after"] == "closed" && c["status_before"] == "open"),
        "{applied}"
    );
}
