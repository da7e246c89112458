//! Safety check-ins: "I'm safe" without an account, normalised phones,
//! households, idempotent retries, refusals that say why, and the people
//! watching a person told live.

mod common;

use common::ws::Ws;
use common::{Backend, TestApp, TestDb, expect_problem};
use serde_json::{Value, json};

on_both_backends!(
    a_resident_checks_in_with_a_household,
    retries_under_one_key_are_stored_once,
    retries_in_transactions_side_by_side_are_stored_once,
    bad_check_ins_say_which_field_and_why,
    a_family_watching_a_person_is_told_live,
    families_look_people_up_exactly_and_wait_for_the_missing,
    counts_follow_each_persons_latest_check_in_live,
    personal_data_goes_after_the_incident_closes_and_counts_stay,
    too_many_check_ins_get_429_and_nothing_is_stored,
    arrivals_at_a_shelter_show_next_to_the_official_count
);

const NANAO: &str = "172022";

/// An active incident for Nanao; its id.
async fn incident(app: &TestApp) -> String {
    let token = app.token("Nanao HQ", &[NANAO]).await;
    app.open_nanao_incident(&token).await
}

async fn check_in(
    app: &TestApp,
    incident: &str,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/incidents/{incident}/checkins")))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("POST check-in")
}

async fn stored(app: &TestApp, incident: &str) -> i64 {
    app.store().checkin_count(incident).await.unwrap()
}

async fn a_resident_checks_in_with_a_household(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let r = check_in(
        &app,
        &id,
        Some("k-1"),
        json!({
            "phone": "０９０－１２３４－５６７８",
            "name": "山田　太郎",
            "statuses": ["safe", "at_shelter"],
            "shelter_id": "CC0000000518",
            "message": "山王小学校にいます",
            "household": [{"name": "山田 花子", "statuses": ["injured", "at_shelter"]}],
            "lat": 37.0418, "lon": 136.9737
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let receipt: Value = r.json().await.unwrap();
    let token = receipt["person_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    assert_eq!(receipt["household"][0]["name"], "山田 花子");
    assert_ne!(
        receipt["household"][0]["person_token"],
        receipt["person_token"]
    );
    assert!(receipt["recorded_at"].as_str().is_some());
    assert_eq!(stored(&app, &id).await, 2, "one check-in per person");

    // The same person, typing differently, is the same person.
    let r = check_in(
        &app,
        &id,
        None,
        json!({"phone": "+81 90 1234 5678", "name": "山田太郎", "statuses": ["safe", "at_home"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["person_token"], token.as_str());
    assert_ne!(again["checkin_id"], receipt["checkin_id"]);
    assert_eq!(stored(&app, &id).await, 3);
    app.stop().await;
}

async fn retries_under_one_key_are_stored_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let body = json!({"phone": "080-1111-2222", "name": "佐藤 一郎", "statuses": ["safe"]});
    let first: Value = check_in(&app, &id, Some("retry-me"), body.clone())
        .await
        .json()
        .await
        .unwrap();
    for _ in 0..3 {
        let r = check_in(&app, &id, Some("retry-me"), body.clone()).await;
        assert_eq!(r.status(), 201);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            first,
            "the first answer again"
        );
    }
    assert_eq!(stored(&app, &id).await, 1);
    let other = json!({"phone": "080-1111-2222", "name": "佐藤 一郎", "statuses": ["need_help"]});
    let r = check_in(&app, &id, Some("retry-me"), other).await;
    let problem = expect_problem(r, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(
        stored(&app, &id).await,
        1,
        "nothing written for the conflict"
    );

    // A flaky phone sends the same check-in many times at once: the copies
    // can share one batch with the first, and are still stored once.
    let body = json!({"phone": "080-3333-4444", "name": "鈴木 二郎", "statuses": ["safe"]});
    let answers = futures_util::future::join_all(
        (0..8).map(|_| check_in(&app, &id, Some("at-once"), body.clone())),
    )
    .await;
    let mut receipts = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 201);
        receipts.push(r.json::<Value>().await.unwrap());
    }
    assert!(receipts.iter().all(|r| *r == receipts[0]), "{receipts:?}");
    assert_eq!(stored(&app, &id).await, 2);

    // The same person checking in twice at once, under two keys: two
    // check-ins, one person.
    let answers = futures_util::future::join_all(
        ["twice-1", "twice-2"].map(|key| check_in(&app, &id, Some(key), body.clone())),
    )
    .await;
    let mut tokens = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 201);
        tokens.push(r.json::<Value>().await.unwrap()["person_token"].clone());
    }
    assert_eq!(tokens[0], receipts[0]["person_token"]);
    assert_eq!(tokens[1], receipts[0]["person_token"]);
    assert_eq!(stored(&app, &id).await, 4);
    app.stop().await;
}

/// One check-in per transaction, eight transactions at once (on SQLite
/// they queue): copies of one request, and one person under several keys,
/// meet in concurrent transactions rather than in one batch.
async fn retries_in_transactions_side_by_side_are_stored_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = anpi::config::ServeConfig {
        checkin_batch: 1,
        checkin_writers: 8,
        checkin_per_phone: 100,
        ..common::config(&db, true)
    };
    let app = TestApp::with_config(db, config).await;
    let id = incident(&app).await;
    let body = json!({"phone": "080-5555-6666", "name": "田中 三郎", "statuses": ["safe"]});
    let answers = futures_util::future::join_all(
        (0..8).map(|_| check_in(&app, &id, Some("same-key"), body.clone())),
    )
    .await;
    let mut receipts = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 201);
        receipts.push(r.json::<Value>().await.unwrap());
    }
    assert!(receipts.iter().all(|r| *r == receipts[0]), "{receipts:?}");
    assert_eq!(stored(&app, &id).await, 1);

    let keys: Vec<String> = (0..8).map(|n| format!("key-{n}")).collect();
    let answers = futures_util::future::join_all(
        keys.iter()
            .map(|key| check_in(&app, &id, Some(key), body.clone())),
    )
    .await;
    for r in answers {
        assert_eq!(r.status(), 201);
        let receipt: Value = r.json().await.unwrap();
        assert_eq!(receipt["person_token"], receipts[0]["person_token"]);
    }
    assert_eq!(stored(&app, &id).await, 9);
    app.stop().await;
}

async fn bad_check_ins_say_which_field_and_why(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let cases = [
        (
            json!({"phone": "090-1234", "name": "A", "statuses": ["safe"]}),
            "phone",
        ),
        (
            json!({"phone": "09012345678", "name": " ", "statuses": ["safe"]}),
            "name",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": []}),
            "statuses",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["safe", "injured"]}),
            "statuses",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["at_home", "at_shelter"], "shelter_id": "CC0000000518"}),
            "statuses",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["fine"]}),
            "statuses[0]",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["at_shelter"]}),
            "shelter_id",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["at_shelter"], "shelter_id": "NOPE"}),
            "shelter_id",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["safe"], "shelter_id": "CC0000000518"}),
            "shelter_id",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["safe"], "message": "あ".repeat(101)}),
            "message",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["safe"], "lat": 37.0}),
            "lat",
        ),
        (
            json!({"phone": "09012345678", "name": "A", "statuses": ["safe"], "household": [{"name": "ａ", "statuses": ["safe"]}]}),
            "household[0].name",
        ),
    ];
    for (body, field) in cases {
        let r = check_in(&app, &id, None, body.clone()).await;
        let problem = expect_problem(r, 400).await;
        assert_eq!(common::problem_fields(&problem), [field], "{body}");
    }
    let r = check_in(
        &app,
        &id,
        Some("bad key"),
        json!({"phone": "09012345678", "name": "A", "statuses": ["safe"]}),
    )
    .await;
    assert_eq!(
        expect_problem(r, 400).await["errors"][0]["field"],
        "Idempotency-Key"
    );
    let r = check_in(
        &app,
        "no-such",
        None,
        json!({"phone": "09012345678", "name": "A", "statuses": ["safe"]}),
    )
    .await;
    expect_problem(r, 404).await;
    assert_eq!(stored(&app, &id).await, 0, "nothing stored");

    let token = app.token("Nanao HQ 2", &[NANAO]).await;
    let r = app
        .post_as(&token, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let r = check_in(
        &app,
        &id,
        None,
        json!({"phone": "09012345678", "name": "A", "statuses": ["safe"]}),
    )
    .await;
    expect_problem(r, 409).await;
    app.stop().await;
}

async fn a_family_watching_a_person_is_told_live(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let mother = json!({"phone": "0767-53-1111", "name": "田中 ハナ", "statuses": ["evacuating"]});
    let first: Value = check_in(&app, &id, None, mother)
        .await
        .json()
        .await
        .unwrap();
    let token = first["person_token"].as_str().unwrap();
    app.wait_published().await; // the family watches from here on

    let mut family = Ws::connect(&app.base).await;
    family
        .subscribe(json!({"channels": [format!("person:{token}")]}))
        .await;
    family.expect("snapshot").await;
    let safe = json!({"phone": "0767531111", "name": "田中ハナ", "statuses": ["safe", "at_shelter"], "shelter_id": "CC0000000518", "message": "無事です"});
    assert_eq!(check_in(&app, &id, None, safe).await.status(), 201);
    let event = family.expect("event").await;
    assert_eq!(event["kind"], "checkin");
    assert_eq!(event["data"]["statuses"], json!(["safe", "at_shelter"]));
    assert_eq!(event["data"]["message"], "無事です");
    assert_eq!(event["data"]["shelter_id"], "CC0000000518");
    assert_eq!(event["data"]["shelter_name"], "山王小学校");
    assert_eq!(event["data"]["phone_last4"], "1111");
    // A look-up names the shelter too.
    let (_, found) = app
        .get_json(&format!("/v1/incidents/{id}/people?phone=0767531111"))
        .await;
    assert_eq!(
        found["people"][0]["checkins"][0]["shelter_name"],
        "山王小学校"
    );
    assert!(
        !event.to_string().contains("767531111"),
        "never the number itself"
    );
    app.stop().await;
}

async fn families_look_people_up_exactly_and_wait_for_the_missing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let household = json!({
        "phone": "090-5555-6666", "name": "鈴木 一郎", "statuses": ["safe", "at_home"], "message": "家族全員無事",
        "household": [{"name": "鈴木 二郎", "statuses": ["injured", "at_home"]}]
    });
    assert_eq!(check_in(&app, &id, None, household).await.status(), 201);
    let people = |q: &str| {
        let path = format!("/v1/incidents/{id}/people?{q}");
        let app = &app;
        async move { app.get_json(&path).await }
    };

    // By phone, however written: both people under it, never the number.
    let (status, by_phone) = people("phone=%EF%BC%90%EF%BC%99%EF%BC%90%205555%206666").await;
    assert_eq!(status, 200, "{by_phone}");
    let found = by_phone["people"].as_array().unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["name"], "鈴木 一郎");
    assert_eq!(found[0]["phone_last4"], "6666");
    assert_eq!(
        found[0]["checkins"][0]["statuses"],
        json!(["safe", "at_home"])
    );
    assert_eq!(found[0]["checkins"][0]["message"], "家族全員無事");
    assert_eq!(
        found[1]["checkins"][0]["statuses"],
        json!(["injured", "at_home"])
    );
    let text = by_phone.to_string();
    // (Tokens are random hex, so only the whole number is a fair test.)
    for number in ["+819055556666", "9055556666", "5555-6666", "55556666"] {
        assert!(!text.contains(number), "{text}");
    }

    // By name, however spaced: exactly that person.
    let (_, by_name) = people("name=%E9%88%B4%E6%9C%A8%E3%80%80%E4%BA%8C%E9%83%8E").await;
    assert_eq!(by_name["people"].as_array().unwrap().len(), 1);
    assert_eq!(by_name["people"][0]["name"], "鈴木 二郎");
    // A part of a name finds nobody: no listing.
    let (_, partial) = people("name=%E9%88%B4%E6%9C%A8").await;
    assert_eq!(partial["people"], json!([]));
    let (status, problem) = people("").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("phone"))
    );
    let (status, _) = people("phone=1&name=x").await;
    assert_eq!(status, 400);

    // Someone not checked in yet: the family waits on the watch token.
    let (_, missing) = people("name=%E9%88%B4%E6%9C%A8%20%E4%B8%89%E9%83%8E").await;
    assert_eq!(missing["people"], json!([]));
    let watch = missing["watch_token"].as_str().unwrap().to_owned();
    let (_, again) = people("name=%E9%88%B4%E6%9C%A8%E4%B8%89%E9%83%8E").await;
    assert_eq!(
        again["watch_token"],
        watch.as_str(),
        "the same wait for the same name"
    );
    let mut family = Ws::connect(&app.base).await;
    family
        .subscribe(json!({"channels": [format!("person:{watch}")]}))
        .await;
    family.expect("snapshot").await;
    let saburo =
        json!({"phone": "080-7777-8888", "name": "鈴木三郎", "statuses": ["safe", "evacuating"]});
    let receipt: Value = check_in(&app, &id, None, saburo)
        .await
        .json()
        .await
        .unwrap();
    let event = family.expect("event").await;
    assert_eq!(event["kind"], "checkin");
    assert_eq!(event["data"]["name"], "鈴木三郎");
    assert_eq!(event["data"]["person_token"], receipt["person_token"]);
    app.stop().await;
}

async fn counts_follow_each_persons_latest_check_in_live(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let mut office = Ws::connect(&app.base).await;
    office
        .subscribe(json!({"channels": [format!("incident:{id}")]}))
        .await;
    let first = office.expect("snapshot").await;
    assert_eq!(first["kind"], "incident.stats");
    assert_eq!(first["data"]["people"], 0);

    let at_school = json!({"phone": "090-1000-0001", "name": "A", "statuses": ["safe", "at_shelter"], "shelter_id": "CC0000000518",
                           "household": [{"name": "B", "statuses": ["injured", "at_shelter"]}]});
    assert_eq!(check_in(&app, &id, None, at_school).await.status(), 201);
    let near_station = json!({"phone": "090-1000-0002", "name": "C", "statuses": ["need_help", "at_home"], "lat": 37.0432, "lon": 136.9674});
    assert_eq!(check_in(&app, &id, None, near_station).await.status(), 201);
    // A moves home: only the latest check-in counts.
    let moved = json!({"phone": "090-1000-0001", "name": "A", "statuses": ["safe", "at_home"]});
    assert_eq!(check_in(&app, &id, None, moved).await.status(), 201);

    let (status, stats) = app.get_json(&format!("/v1/incidents/{id}/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(
        stats,
        json!({
            "people": 3,
            "by_status": {"safe": 1, "injured": 1, "need_help": 1, "at_home": 2, "at_shelter": 1},
            "by_shelter": {"CC0000000518": 1},
            "by_municipality": {"172022": 2, "unknown": 1}
        })
    );
    // The office sees the same counts arrive (coalesced: the last one wins).
    let mut live = Value::Null;
    while live["data"] != stats {
        live = office.expect("event").await;
        assert_eq!(live["kind"], "incident.stats");
    }
    let (status, _) = app.get_json("/v1/incidents/nope/stats").await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn personal_data_goes_after_the_incident_closes_and_counts_stay(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = common::config(&db, true);
    config.purge_after_days = 0;
    let app = TestApp::with_config(db, config).await;
    let id = incident(&app).await;
    for (phone, name) in [("090-2000-0001", "X"), ("090-2000-0002", "Y")] {
        let body = json!({"phone": phone, "name": name, "statuses": ["safe"]});
        assert_eq!(check_in(&app, &id, Some(phone), body).await.status(), 201);
    }
    let (_, waiting) = app
        .get_json(&format!("/v1/incidents/{id}/people?name=Z"))
        .await;
    assert!(waiting["watch_token"].is_string());
    let (_, counts) = app.get_json(&format!("/v1/incidents/{id}/stats")).await;
    let purge = || anpi::usecase::incidents::purge_due(&app.state.services);

    assert_eq!(purge().await.unwrap(), 0, "an open incident keeps its data");
    let office = app.token("Nanao HQ 2", &[NANAO]).await;
    let r = app
        .post_as(&office, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(purge().await.unwrap(), 1);
    assert_eq!(purge().await.unwrap(), 0, "once");

    assert_eq!(stored(&app, &id).await, 0);
    let r = app
        .client
        .get(app.url(&format!("/v1/incidents/{id}/people?phone=090-2000-0001")))
        .send()
        .await
        .unwrap();
    expect_problem(r, 409).await;
    let (_, after) = app.get_json(&format!("/v1/incidents/{id}/stats")).await;
    assert_eq!(after, counts, "the counts survive");
    assert_eq!(counts["people"], 2);
    let (_, incident) = app.get_json(&format!("/v1/incidents/{id}")).await;
    assert!(incident["purged_at"].is_string());
    app.stop().await;
}

async fn too_many_check_ins_get_429_and_nothing_is_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = common::config(&db, true);
    config.checkin_per_phone = 2;
    config.checkin_per_address = 4;
    let app = TestApp::with_config(db, config).await;
    let id = incident(&app).await;
    let same_phone = json!({"phone": "090-3000-0001", "name": "P", "statuses": ["safe"]});
    for _ in 0..2 {
        assert_eq!(
            check_in(&app, &id, None, same_phone.clone()).await.status(),
            201
        );
    }
    let r = check_in(&app, &id, None, same_phone).await;
    assert!(r.headers().contains_key("retry-after"));
    let problem = expect_problem(r, 429).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("phone"),
        "{problem}"
    );
    // Two more from this address are allowed (4 a minute), then no more.
    for n in 2..4 {
        let other = json!({"phone": format!("090-3000-000{n}"), "name": "Q", "statuses": ["safe"]});
        let status = check_in(&app, &id, None, other).await.status();
        assert_eq!(status, if n < 3 { 201 } else { 429 }, "request {n}");
    }
    assert_eq!(stored(&app, &id).await, 3, "only what was answered 201");
    app.stop().await;
}

async fn arrivals_at_a_shelter_show_next_to_the_official_count(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = incident(&app).await;
    let school = "CC0000000518";
    let (_, before) = app.get_json(&format!("/v1/shelters/{school}")).await;
    assert_eq!(before["self_reported"], 0);
    let mut resident = Ws::connect(&app.base).await;
    resident
        .subscribe(json!({"channels": [format!("area:{NANAO}")]}))
        .await;
    resident.expect("snapshot").await;
    // The shelter's next update on the area with this many arrivals.
    async fn arrivals(ws: &mut Ws, school: &str, n: i64) -> Value {
        loop {
            let event = ws.expect("event").await;
            if event["data"]["id"] == school && event["data"]["self_reported"] == n {
                return event["data"].clone();
            }
        }
    }

    let family = json!({"phone": "090-4000-0001", "name": "A", "statuses": ["safe", "at_shelter"], "shelter_id": school,
                        "household": [{"name": "B", "statuses": ["safe", "at_shelter"]}]});
    assert_eq!(check_in(&app, &id, None, family).await.status(), 201);
    let seen = arrivals(&mut resident, school, 2).await;
    assert_eq!(
        seen["occupancy"], before["occupancy"],
        "the office's count is its own"
    );
    let (_, now) = app.get_json(&format!("/v1/shelters/{school}")).await;
    assert_eq!(now["self_reported"], 2);

    let home = json!({"phone": "090-4000-0001", "name": "A", "statuses": ["safe", "at_home"]});
    assert_eq!(check_in(&app, &id, None, home).await.status(), 201);
    arrivals(&mut resident, school, 1).await;

    let office = app.token("Nanao HQ 2", &[NANAO]).await;
    let r = app
        .post_as(&office, &format!("/v1/incidents/{id}/close"), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    arrivals(&mut resident, school, 0).await;
    app.stop().await;
}
