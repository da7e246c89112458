//! Incidents: an office activates one for its municipalities, anyone sees
//! which are active, an office of every covered municipality closes it.

mod common;

use common::{Backend, TestApp, expect_problem};
use serde_json::{Value, json};

on_both_backends!(
    an_office_opens_lists_and_closes_an_incident,
    offices_act_only_within_their_municipalities,
    bad_incidents_say_which_field_and_why
);

const NANAO: &str = "172022";
const WAJIMA: &str = "172049";

fn noto(municipalities: &[&str]) -> Value {
    json!({
        "name": "令和6年能登半島地震",
        "hazard": "earthquake",
        "municipalities": municipalities,
        "started_at": "2024-01-01T16:10:00+09:00",
    })
}

async fn an_office_opens_lists_and_closes_an_incident(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;

    let r = app.post_as(&token, "/v1/incidents", noto(&[NANAO])).await;
    assert_eq!(r.status(), 201);
    let incident: Value = r.json().await.unwrap();
    let id = incident["id"].as_str().unwrap().to_owned();
    assert_eq!(incident["name"], "令和6年能登半島地震");
    assert_eq!(incident["hazard"], "earthquake");
    assert_eq!(incident["municipalities"], json!([NANAO]));
    assert_eq!(incident["started_at"], "2024-01-01T07:10:00Z");
    assert_eq!(incident["created_by"], "Nanao HQ");
    assert_eq!(incident["closed_at"], Value::Null);

    let (status, active) = app.get_json("/v1/incidents?active=true").await;
    assert_eq!(status, 200);
    assert_eq!(active["incidents"], json!([incident]));
    let (_, here) = app
        .get_json(&format!("/v1/incidents?municipality={NANAO}"))
        .await;
    assert_eq!(here["incidents"].as_array().unwrap().len(), 1);
    let (_, elsewhere) = app
        .get_json(&format!("/v1/incidents?municipality={WAJIMA}"))
        .await;
    assert_eq!(elsewhere["incidents"], json!([]));
    assert_eq!(
        app.get_json(&format!("/v1/incidents/{id}")).await.1,
        incident
    );

    let r = app
        .post_as(&token, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let closed: Value = r.json().await.unwrap();
    let closed_at =
        chrono::DateTime::parse_from_rfc3339(closed["closed_at"].as_str().unwrap()).unwrap();
    let purge_at =
        chrono::DateTime::parse_from_rfc3339(closed["purge_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        purge_at - closed_at,
        chrono::TimeDelta::days(30),
        "the default retention"
    );

    assert_eq!(
        app.get_json("/v1/incidents?active=true").await.1["incidents"],
        json!([])
    );
    assert_eq!(
        app.get_json("/v1/incidents?active=false").await.1["incidents"],
        json!([closed])
    );
    let again = app
        .post_as(&token, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    expect_problem(again, 409).await;

    // Both are in the audit trail, as the office did them.
    let trail: Vec<(String, String)> = audit_rows(&app, &id).await;
    assert_eq!(
        trail,
        vec![
            ("incident.open".to_owned(), "official:1 Nanao HQ".to_owned()),
            (
                "incident.close".to_owned(),
                "official:1 Nanao HQ".to_owned()
            )
        ]
    );
    app.stop().await;
}

/// The audit rows of `target`, oldest first: (action, actor).
async fn audit_rows(app: &TestApp, target: &str) -> Vec<(String, String)> {
    let events = app.store().audit_trail(target, 10).await.unwrap();
    let mut rows: Vec<(String, String)> = events.into_iter().map(|e| (e.action, e.actor)).collect();
    rows.reverse();
    rows
}

async fn offices_act_only_within_their_municipalities(backend: Backend) {
    let app = TestApp::start(backend).await;
    let nanao = app.token("Nanao HQ", &[NANAO]).await;
    let prefecture = app.token("Ishikawa HQ", &[NANAO, WAJIMA]).await;

    let r = app
        .post_as(&nanao, "/v1/incidents", noto(&[NANAO, WAJIMA]))
        .await;
    let problem = expect_problem(r, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains(WAJIMA),
        "{problem}"
    );
    assert_eq!(
        app.get_json("/v1/incidents").await.1["incidents"],
        json!([]),
        "nothing stored"
    );

    let r = app
        .post_as(&prefecture, "/v1/incidents", noto(&[NANAO, WAJIMA]))
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Nanao alone may not close what also covers Wajima.
    let r = app
        .post_as(&nanao, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    expect_problem(r, 403).await;
    let r = app
        .client
        .post(app.url(&format!("/v1/incidents/{id}/close")))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let r = app
        .post_as(&prefecture, "/v1/incidents/no-such-id/close", json!({}))
        .await;
    expect_problem(r, 404).await;
    let r = app
        .post_as(&prefecture, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn bad_incidents_say_which_field_and_why(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let r = app
        .post_as(
            &token,
            "/v1/incidents",
        json!({"name": "  ", "hazard": "meteor", "municipalities": ["1720", NANAO, NANAO], "started_at": "yesterday"}),
    )
    .await;
    let problem = expect_problem(r, 400).await;
    assert_eq!(
        common::problem_fields(&problem),
        [
            "name",
            "hazard",
            "municipalities[0]",
            "municipalities[2]",
            "started_at"
        ]
    );
    let r = app
        .post_as(
            &token,
            "/v1/incidents",
        json!({"name": "x", "hazard": "flood", "municipalities": [NANAO], "started_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    let problem = expect_problem(r, 400).await;
    assert_eq!(problem["errors"][0]["field"], "started_at");
    let (status, problem) = app.get_json("/v1/incidents?active=maybe").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("active"))
    );
    let (status, _) = app.get_json("/v1/incidents/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        app.get_json("/v1/incidents").await.1["incidents"],
        json!([]),
        "nothing stored"
    );
    app.stop().await;
}
