//! What a hostile or careless client found when probing the running service:
//! each is answered with a clear 4xx naming the field, and none of it can
//! fail anyone else's request.

mod common;

use anpi::domain::person::Status;
use anpi::store::{CheckinRequest, Committed, PersonReport};
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    a_nul_in_one_check_in_fails_only_that_one,
    a_batch_the_database_refuses_is_split_until_only_the_bad_row_fails,
    nul_and_undecodable_text_anywhere_is_a_400,
    large_bodies_are_refused_before_they_are_read_unless_an_official_uploads,
    the_geojson_collection_is_streamed_whole,
    a_snapshot_listing_no_shelter_closes_them_only_when_confirmed,
    pfif_names_are_held_to_the_check_in_limit,
    the_bearer_scheme_is_case_insensitive,
    metrics_need_the_metrics_token_when_one_is_set,
);

fn checkin(phone: usize, message: &str) -> Value {
    json!({
        "phone": format!("090-1111-{phone:04}"),
        "name": format!("住民 {phone}"),
        "statuses": ["safe"],
        "message": message,
    })
}

/// Sixty people check in at the same moment, one of them with a NUL in
/// the message: that one is told which field is wrong, all others are stored.
async fn a_nul_in_one_check_in_fails_only_that_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let incident = app.open_nanao_incident(&office).await;
    let url = app.url(&format!("/v1/incidents/{incident}/checkins"));
    let sends = (0..60).map(|i| {
        let client = app.client.clone();
        let url = url.clone();
        let message = if i == 30 { "x\u{0}y" } else { "無事です" };
        async move { client.post(&url).json(&checkin(i, message)).send().await }
    });
    let answers = futures_util::future::join_all(sends).await;
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("answered");
        if i == 30 {
            let problem = expect_problem(answer, 400).await;
            assert_eq!(problem_fields(&problem), ["message"]);
        } else {
            assert_eq!(answer.status(), 201, "check-in {i}");
        }
    }
    let (_, stats) = app
        .get_json(&format!("/v1/incidents/{incident}/stats"))
        .await;
    assert_eq!(stats["people"], 59, "{stats}");
    app.stop().await;
}

/// Past the HTTP edge (a future field, a CLI, a job), a row the database
/// cannot store must still fail alone: the writer splits a refused batch.
async fn a_batch_the_database_refuses_is_split_until_only_the_bad_row_fails(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let incident = app.open_nanao_incident(&office).await;
    let request = |i: usize, message: &str| CheckinRequest {
        incident_id: incident.clone(),
        idempotency: None,
        people: vec![PersonReport {
            phone_hash: format!("hash-{i}"),
            phone_last4: format!("{i:04}"),
            name: format!("住民 {i}"),
            name_key: format!("住民{i}"),
            statuses: vec![Status::Safe],
        }],
        shelter_id: None,
        shelter_name: None,
        message: Some(message.to_owned()),
        location: None,
    };
    let writer = app.state.checkins.clone();
    let submits = (0..40).map(|i| {
        let writer = writer.clone();
        let r = request(i, if i == 7 { "x\u{0}y" } else { "ok" });
        async move { writer.submit(r).await }
    });
    let outcomes = futures_util::future::join_all(submits).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match (backend, i, outcome) {
            // PostgreSQL cannot store U+0000 in text; SQLite can.
            (Backend::Postgres, 7, Err(anpi::checkin::SubmitError::Failed(e))) => {
                assert!(e.refused, "refused for its content, not 'try again'");
            }
            (_, _, Ok(Committed::New { .. })) => {}
            (_, i, other) => panic!("check-in {i}: {other:?}"),
        }
    }
    app.stop().await;
}

/// NUL in a query, a path, an announcement, an incident name; a path that
/// is not UTF-8: 400 with problem+json naming the part, never a 500.
async fn nul_and_undecodable_text_anywhere_is_a_400(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let incident = app.open_nanao_incident(&office).await;

    let r = app
        .client
        .get(app.url(&format!("/v1/incidents/{incident}/people?name=a%00b")))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_fields(&expect_problem(r, 400).await), ["query"]);

    for path in ["/v1/shelters/CC%00", "/v1/shelters/%FF%FE", "/v1/%C3%28"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            problem_fields(&expect_problem(r, 400).await),
            ["path"],
            "{path}"
        );
    }

    let r = app
        .post_as(
            &office,
            "/v1/municipalities/172022/announcements",
            json!({"text": "給水\u{0}", "severity": "info"}),
        )
        .await;
    assert_eq!(problem_fields(&expect_problem(r, 400).await), ["text"]);

    let r = app
        .post_as(
            &office,
            "/v1/incidents",
            json!({"name": "地震\u{0}", "hazard": "earthquake", "municipalities": ["172022"]}),
        )
        .await;
    assert_eq!(problem_fields(&expect_problem(r, 400).await), ["name"]);

    let r = app
        .client
        .post(app.url(&format!("/v1/incidents/{incident}/checkins")))
        .json(&json!({
            "phone": "090-1111-2222", "name": "山田", "statuses": ["safe"],
            "household": [{"name": "花\u{0}子", "statuses": ["safe"]}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem_fields(&expect_problem(r, 400).await),
        ["household[0].name"]
    );

    // An escaped backslash before "u0000" is text, not a NUL.
    let r = app
        .client
        .post(app.url(&format!("/v1/incidents/{incident}/checkins")))
        .header("content-type", "application/json")
        .body(
            r#"{"phone":"090-1111-3333","name":"山田","statuses":["safe"],"message":"C:\\u0000"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let r = app
        .upload_as(
            &office,
            "/v1/shelters/import",
            "text/csv",
            b"ID,\xE5\x90\x8D\xE7\xA7\xB0\n1,a\x00b\n".to_vec(),
        )
        .await;
    assert_eq!(problem_fields(&expect_problem(r, 422).await), ["encoding"]);
    app.stop().await;
}

/// Anyone may post a check-in, so bodies are small; only an official's
/// upload gets the large allowance, and only after the token is checked.
async fn large_bodies_are_refused_before_they_are_read_unless_an_official_uploads(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let incident = app.open_nanao_incident(&office).await;
    let big = "あ".repeat(400_000); // 1.2 MB of JSON
    // Refused before it is read, so the server closes that connection: a
    // client of its own, so the pool below does not try to reuse it.
    let r = reqwest::Client::new()
        .post(app.url(&format!("/v1/incidents/{incident}/checkins")))
        .json(&json!({"phone": "090-1111-2222", "name": "山田", "statuses": ["safe"], "message": big}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 413).await;

    // No token: 401 without reading the file. (Small enough that the
    // client has sent it all before the early answer closes the socket; a
    // client of its own, so the closed connection is not reused below.)
    let r = reqwest::Client::new()
        .post(app.url("/v1/shelters/import"))
        .header("content-type", "text/csv")
        .body("ID,名称\n".to_owned() + &"X,y\n".repeat(30_000))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;

    let csv = format!("ID,名称\n{}", "X,y\n".repeat(300_000)); // 1.2 MB
    // With a token, the file is read and judged on its content (its header is
    // not a known layout).
    let r = app
        .upload_as(&office, "/v1/shelters/import", "text/csv", csv)
        .await;
    expect_problem(r, 422).await;
    app.stop().await;
}

async fn the_geojson_collection_is_streamed_whole(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, body) = app.get_json("/v1/shelters.geojson").await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "FeatureCollection");
    let features = body["features"].as_array().expect("features");
    assert_eq!(features.len(), app.state.index.len());
    assert!(features.len() > 64, "more than one chunk");
    assert!(body["attribution"].as_str().is_some());
    let ids: std::collections::HashSet<_> = features.iter().map(|f| f["id"].clone()).collect();
    assert_eq!(ids.len(), features.len(), "every feature once");
    assert!(
        features
            .iter()
            .all(|f| f["properties"]["location"].is_null())
    );
    app.stop().await;
}

async fn a_snapshot_listing_no_shelter_closes_them_only_when_confirmed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let path = "/v1/municipalities/172022/shelter-status";
    let opened = app
        .patch_as(
            &office,
            "/v1/shelters/CC0000000505",
            json!({"status": "open"}),
        )
        .await;
    assert_eq!(opened.status(), 200);
    let header_only = "ID,名称,人数\n";
    let r = app.upload_as(&office, path, "text/csv", header_only).await;
    assert_eq!(problem_fields(&expect_problem(r, 422).await), ["close_all"]);
    let (_, shelter) = app.get_json("/v1/shelters/CC0000000505").await;
    assert_eq!(shelter["status"], "open", "nothing changed");

    let r = app
        .upload_as(
            &office,
            &format!("{path}?close_all=true"),
            "text/csv",
            header_only,
        )
        .await;
    assert_eq!(r.status(), 200);
    let (_, shelter) = app.get_json("/v1/shelters/CC0000000505").await;
    assert_eq!(shelter["status"], "closed");
    app.stop().await;
}

async fn pfif_names_are_held_to_the_check_in_limit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    let incident = app.open_nanao_incident(&office).await;
    let xml = format!(
        r#"<pfif xmlns="http://zesty.ca/pfif/1.4"><person><person_record_id>pf.example/p.1</person_record_id><full_name>{}</full_name></person></pfif>"#,
        "長".repeat(101)
    );
    let r = app
        .upload_as(
            &office,
            &format!("/v1/incidents/{incident}/pfif"),
            "application/xml",
            xml,
        )
        .await;
    assert_eq!(
        problem_fields(&expect_problem(r, 400).await),
        ["person[0].full_name"]
    );
    app.stop().await;
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &["172022"]).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = app
            .client
            .patch(app.url("/v1/shelters/CC0000000505"))
            .header("authorization", format!("{scheme} {office}"))
            .json(&json!({"occupancy": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = app
        .client
        .patch(app.url("/v1/shelters/CC0000000505"))
        .header("authorization", format!("Basic {office}"))
        .json(&json!({"occupancy": 3}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    app.stop().await;
}

async fn metrics_need_the_metrics_token_when_one_is_set(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let mut config = common::config(&db, true);
    config.metrics_token = Some(anpi::config::Redacted("scrape-me".into()));
    let app = TestApp::with_config(db, config).await;
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    expect_problem(r, 401).await;
    let r = app.get_as("someone-else", "/metrics").await;
    expect_problem(r, 401).await;
    let r = app.get_as("scrape-me", "/metrics").await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}
