//! Announcements: an office tells its municipality; residents read the
//! latest and hear of new ones live on the area channel.

mod common;

use common::ws::Ws;
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    an_office_announces_and_residents_hear_it_live,
    announcements_are_refused_with_reasons
);

const NANAO: &str = "172022";
const PATH: &str = "/v1/municipalities/172022/announcements";

async fn an_office_announces_and_residents_hear_it_live(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &[NANAO]).await;
    let mut resident = Ws::connect(&app.base).await;
    resident
        .subscribe(json!({"channels": [format!("area:{NANAO}")]}))
        .await;
    resident.expect("snapshot").await;

    let r = app
        .post_as(
            &office,
            PATH,
            json!({"text": "  市役所で給水 10:00から  ", "severity": "warning",
                   "text_en": " Water at City Hall from 10:00 "}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let posted: Value = r.json().await.unwrap();
    assert_eq!(posted["text"], "市役所で給水 10:00から");
    assert_eq!(posted["text_en"], "Water at City Hall from 10:00");
    assert_eq!(posted["severity"], "warning");
    assert_eq!(posted["posted_by"], "Nanao HQ");

    let event = resident.expect("event").await;
    assert_eq!(event["kind"], "announcement");
    assert_eq!(event["data"], posted);

    // A page that shows only announcements takes notices:, whose snapshot
    // is the latest ones rather than every shelter of the area.
    let mut reader = Ws::connect(&app.base).await;
    reader
        .subscribe(json!({"channels": [format!("notices:{NANAO}")]}))
        .await;
    let snapshot = reader.expect("snapshot").await;
    assert_eq!(snapshot["kind"], "announcement.snapshot");
    assert_eq!(snapshot["data"]["announcements"], json!([posted]));

    let r = app
        .post_as(&office, PATH, json!({"text": "入浴支援 14:00〜"}))
        .await;
    assert_eq!(r.status(), 201);
    let heard = reader.expect("event").await;
    assert_eq!(heard["kind"], "announcement");
    assert_eq!(heard["data"]["text"], "入浴支援 14:00〜");
    let (status, list) = app.get_json(PATH).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = list["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["入浴支援 14:00〜", "市役所で給水 10:00から"],
        "newest first"
    );
    assert_eq!(list["announcements"][0]["severity"], "info");
    let (_, one) = app.get_json(&format!("{PATH}?limit=1")).await;
    assert_eq!(one["announcements"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn announcements_are_refused_with_reasons(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &[NANAO]).await;
    let wajima = app.token("Wajima HQ", &["172049"]).await;

    let r = app
        .post_as(&wajima, PATH, json!({"text": "七尾の皆さんへ"}))
        .await;
    expect_problem(r, 403).await;
    let r = app
        .client
        .post(app.url(PATH))
        .json(&json!({"text": "誰でも"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let r = app
        .post_as(&office, PATH, json!({"text": " ", "severity": "panic"}))
        .await;
    assert_eq!(
        problem_fields(&expect_problem(r, 400).await),
        ["text", "severity"]
    );
    let r = app
        .post_as(&office, PATH, json!({"text": "あ".repeat(1001)}))
        .await;
    assert_eq!(problem_fields(&expect_problem(r, 400).await), ["text"]);
    let (status, body) = app.get_json(&format!("{PATH}?limit=0")).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (400, Some("limit"))
    );
    let (_, list) = app.get_json(PATH).await;
    assert_eq!(list["announcements"], json!([]), "nothing refused was kept");
    app.stop().await;
}
