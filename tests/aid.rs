//! Aid requests and offers, end to end over real HTTP and WebSocket on both
//! backends: a shelter's office posts needs, a resident without an account
//! asks and edits by link, a coordinator registers a volunteer who finds,
//! claims, sees the contact and delivers, the resident confirms — and the
//! contact is found nowhere else.

mod common;

use std::time::Duration;

use anpi::store::Store;
use common::ws::Ws;
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    a_request_is_asked_claimed_delivered_and_received,
    bad_aid_input_is_refused_with_reasons_and_nothing_stored,
    throttle_lapse_stale_expiry_and_report_and_hide,
    a_retried_request_is_stored_once,
);

const NANAO: &str = "172022";
/// Near Nanao station.
const LAT: f64 = 37.0432;
const LON: f64 = 136.9674;
const PHONE: &str = "090-3141-5926";
/// What of the phone number would show through any formatting.
const PHONE_DIGITS: &str = "31415926";
const CONTACT_TEXT: &str = "玄関の赤い札が目印";

/// Every frame a socket receives within `quiet` of the last one.
async fn drain(ws: &mut Ws, quiet: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = ws.next_within(quiet).await {
        frames.push(frame);
    }
    frames
}

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.expect("JSON body");
    assert_eq!(got, status, "{body}");
    body
}

/// The text of every plain (not sealed) column aid writes to, and of the
/// audit trail and outbox: where a leaked contact would show.
async fn plain_columns(store: &Store) -> String {
    let sql = [
        "select id || municipality || category || items || coalesce(note, '') || posted_by || status || confirmed_by || edit_hash from aid_request",
        "select id || items || coalesce(note, '') || posted_by from aid_offer",
        "select id || status || coalesce(reason, '') from aid_claim",
        "select actor || action || target || coalesce(before, '') || coalesce(after, '') from audit_event",
        "select events from outbox",
        "select name || coalesce(org, '') from official",
        "select key || body_hash || request_id from aid_idempotency",
    ];
    let mut all = String::new();
    for q in sql {
        let rows: Vec<String> = match store {
            Store::Sqlite(pool) => sqlx::query_scalar(q).fetch_all(pool).await.unwrap(),
            Store::Postgres(pool) => sqlx::query_scalar(q).fetch_all(pool).await.unwrap(),
        };
        all.push_str(&rows.join("\n"));
    }
    all
}

async fn exec(store: &Store, sql: &str) {
    match store {
        Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .map(|_| ()),
        Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .expect("test SQL runs");
}

fn assert_private(what: &str, text: &str) {
    assert!(
        !text.contains(PHONE_DIGITS) && !text.contains(CONTACT_TEXT),
        "the contact leaked into {what}: {text}"
    );
}

async fn a_request_is_asked_claimed_delivered_and_received(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let centre = app.coordinator("七尾市社会福祉協議会", &[NANAO]).await;
    let volunteer = app.volunteer(&centre, "山田 花子").await;
    let bystander = app.volunteer(&centre, "佐藤 一郎").await;
    let mut public_answers = String::new();

    let cell = anpi::live::channel::Channel::cell_at(
        anpi::domain::shelter::LatLon::new(LAT, LON).unwrap(),
    )
    .to_string();
    let mut watcher = Ws::connect(&app.base).await;
    watcher
        .subscribe(json!({"channels": [format!("area:{NANAO}"), cell]}))
        .await;

    // A shelter's office posts its needs as a real request.
    let (_, shelters) = app
        .get_json(&format!(
            "/v1/shelters?municipality={NANAO}&near={LAT},{LON}&limit=1"
        ))
        .await;
    let shelter_id = shelters["shelters"][0]["id"].as_str().unwrap().to_owned();
    let needs = json_of(
        app.post_as(
            &office,
            "/v1/aid/requests",
            json!({"shelter_id": shelter_id, "category": "baby_supplies", "urgency": "high",
                   "items": [{"name": "粉ミルク", "quantity": 12, "unit": "缶"}]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(needs["request"]["posted_by"], "七尾市災害対策本部");
    assert_eq!(needs["request"]["municipality"], NANAO);
    assert_eq!(needs["request"]["shelter_id"], shelter_id.as_str());

    // A resident without an account asks for water.
    let r = app
        .client
        .post(app.url("/v1/aid/requests"))
        .json(
            &json!({"municipality": NANAO, "category": "water", "lat": LAT, "lon": LON,
                      "items": [{"name": "水 2L", "quantity": 6, "unit": "本"}],
                      "note": "高齢者2名、歩けません",
                      "contact": {"phone": PHONE, "text": CONTACT_TEXT}}),
        )
        .send()
        .await
        .unwrap();
    let posted = json_of(r, 201).await;
    let id = posted["request"]["id"].as_str().unwrap().to_owned();
    let key = posted["edit_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("anpi_edit_"));
    assert!(
        posted["edit_link"]
            .as_str()
            .unwrap()
            .contains(&format!("request={id}&key={key}"))
    );
    assert_eq!(posted["request"]["contact"]["phone"], PHONE);
    assert_eq!(posted["request"]["posted_by"], "resident");
    assert_eq!(posted["request"]["status"], "open");
    let inbox = posted["request"]["inbox"].as_str().unwrap().to_owned();
    assert!(inbox.starts_with("inbox:"));
    // The public place is the cell's centre, not the house.
    assert_ne!(posted["request"]["place"]["lat"], json!(LAT));
    let mut requester = Ws::connect(&app.base).await;
    requester.subscribe(json!({"channels": [inbox]})).await;

    // The resident edits by the link; nobody else can.
    let edit = json!({"items": [{"name": "水 2L", "quantity": 10, "unit": "本"}]});
    let edited = json_of(
        app.patch_as(&key, &format!("/v1/aid/requests/{id}"), edit.clone())
            .await,
        200,
    )
    .await;
    assert_eq!(edited["quantity"], 10);
    let r = app
        .client
        .patch(app.url(&format!("/v1/aid/requests/{id}")))
        .json(&edit)
        .send()
        .await
        .unwrap();
    expect_problem(r, 403).await;
    let forged = format!("anpi_edit_{}", "0".repeat(64));
    expect_problem(
        app.patch_as(&forged, &format!("/v1/aid/requests/{id}"), edit.clone())
            .await,
        403,
    )
    .await;
    expect_problem(
        app.patch_as(&volunteer, &format!("/v1/aid/requests/{id}"), edit)
            .await,
        403,
    )
    .await;

    // The volunteer finds it near them, by category, with public fields only.
    let r = app
        .client
        .get(app.url(&format!(
            "/v1/aid/requests?near={},{}&radius_m=3000&category=water",
            LAT + 0.01,
            LON
        )))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    public_answers.push_str(&text);
    let near: Value = serde_json::from_str(&text).unwrap();
    let found = &near["requests"][0];
    assert_eq!(found["id"], id.as_str());
    assert!(found["distance_m"].as_f64().unwrap() < 3000.0);
    assert!(found.get("contact").is_none() && found.get("at").is_none());

    // Offers and matching, both ways.
    let offer = json_of(
        app.post_as(
            &volunteer,
            "/v1/aid/offers",
            json!({"category": "water", "lat": LAT + 0.02, "lon": LON, "reach_m": 8000,
                   "items": [{"name": "水 2L", "quantity": 4, "unit": "本"}]}),
        )
        .await,
        201,
    )
    .await;
    let offer_id = offer["id"].as_str().unwrap().to_owned();
    let far_offer = json_of(
        app.post_as(
            &bystander,
            "/v1/aid/offers",
            json!({"category": "water", "lat": LAT + 0.5, "lon": LON, "reach_m": 5000,
                   "items": [{"name": "水", "quantity": 100}]}),
        )
        .await,
        201,
    )
    .await;
    let text = app
        .client
        .get(app.url(&format!("/v1/aid/requests/{id}/matches")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    public_answers.push_str(&text);
    let matches: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = matches["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [offer_id.as_str()],
        "the far offer is out of its reach"
    );
    assert_ne!(far_offer["id"], offer_id.as_str());
    let text = app
        .client
        .get(app.url(&format!("/v1/aid/offers/{offer_id}/matches")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    public_answers.push_str(&text);
    let matches: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(matches["matches"][0]["id"], id.as_str());
    assert!(matches["matches"][0]["score"].as_f64().unwrap() > 0.5);

    // The volunteer claims part and sees the contact; a bystander does not.
    let me = json_of(app.get_as(&volunteer, "/v1/me").await, 200).await;
    assert_eq!(me["role"], "volunteer");
    assert_eq!(me["org"], "七尾市社会福祉協議会");
    let mut volunteer_inbox = Ws::connect(&app.base).await;
    volunteer_inbox
        .subscribe(json!({"channels": [me["inbox"]]}))
        .await;
    let claimed = json_of(
        app.post_as(
            &volunteer,
            &format!("/v1/aid/requests/{id}/claims"),
            json!({"quantity": 4}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(claimed["request"]["contact"]["phone"], PHONE);
    assert_eq!(claimed["request"]["contact"]["text"], CONTACT_TEXT);
    assert_eq!(claimed["request"]["at"]["lat"], json!(LAT));
    assert_eq!(claimed["request"]["status"], "partially_claimed");
    assert_eq!(claimed["request"]["remaining"], 6);
    let claim_id = claimed["claim"]["id"].as_str().unwrap().to_owned();
    let seen = json_of(
        app.get_as(&volunteer, &format!("/v1/aid/requests/{id}"))
            .await,
        200,
    )
    .await;
    assert_eq!(seen["contact"]["phone"], PHONE);
    let text = app
        .get_as(&bystander, &format!("/v1/aid/requests/{id}"))
        .await
        .text()
        .await
        .unwrap();
    public_answers.push_str(&text);
    let r = app
        .post_as(
            &bystander,
            &format!("/v1/aid/requests/{id}/claims"),
            json!({"quantity": 7}),
        )
        .await;
    let problem = expect_problem(r, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("only 6 units"));
    // The office of the municipality sees it; the coordinator too.
    let seen = json_of(
        app.get_as(&office, &format!("/v1/aid/requests/{id}")).await,
        200,
    )
    .await;
    assert_eq!(seen["contact"]["phone"], PHONE);
    assert_eq!(seen["claims"].as_array().unwrap().len(), 1);

    // Delivered, then the resident confirms receipt by the link.
    let delivered = json_of(
        app.post_as(
            &volunteer,
            &format!("/v1/aid/claims/{claim_id}/delivered"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(delivered["status"], "delivered");
    let done = json_of(
        app.patch_as(
            &key,
            &format!("/v1/aid/requests/{id}"),
            json!({"status": "fulfilled"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["status"], "fulfilled");
    assert_eq!(done["claims"][0]["status"], "received");
    let mine = json_of(app.get_as(&volunteer, "/v1/aid/claims").await, 200).await;
    assert_eq!(mine[0]["claim"]["status"], "received");
    assert!(
        mine[0]["request"]["contact"].is_null(),
        "no contact once the claim is closed"
    );
    let (status, after) = app.get_json(&format!("/v1/aid/requests/{id}")).await;
    assert_eq!(status, 200);
    public_answers.push_str(&after.to_string());
    let (_, list) = app
        .get_json(&format!("/v1/aid/requests?near={LAT},{LON}"))
        .await;
    public_answers.push_str(&list.to_string());
    assert!(
        !list.to_string().contains(&id),
        "a fulfilled request is no longer listed"
    );

    // Live: the area and cell heard every change, public fields only; the
    // inboxes heard of the claim.
    app.wait_published().await;
    let seen = drain(&mut watcher, Duration::from_millis(500)).await;
    let kinds: Vec<&str> = seen.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"aid.request"), "{kinds:?}");
    assert!(kinds.contains(&"aid.offer"), "{kinds:?}");
    assert!(kinds.contains(&"aid.counts"), "{kinds:?}");
    let statuses: Vec<&str> = seen
        .iter()
        .filter(|f| f["kind"] == "aid.request" && f["data"]["id"] == id.as_str())
        .filter_map(|f| f["data"]["status"].as_str())
        .collect();
    assert!(statuses.ends_with(&["fulfilled"]), "{statuses:?}");
    let counts = seen
        .iter()
        .rev()
        .find(|f| f["kind"] == "aid.counts")
        .unwrap();
    assert_eq!(counts["data"]["open"]["baby_supplies"], 1);
    let volunteer_frames = drain(&mut volunteer_inbox, Duration::from_millis(300)).await;
    assert!(
        volunteer_frames
            .iter()
            .any(|f| f["kind"] == "aid.claim" && f["data"]["claim"]["status"] == "delivered"),
        "{volunteer_frames:?}"
    );
    let requester_frames = drain(&mut requester, Duration::from_millis(300)).await;
    assert!(
        requester_frames.iter().any(|f| f["kind"] == "aid.claim"),
        "{requester_frames:?}"
    );

    // Nobody else ever sees the contact.
    assert_private("public answers", &public_answers);
    for frames in [&seen, &volunteer_frames, &requester_frames] {
        assert_private("live events", &serde_json::to_string(frames).unwrap());
    }
    assert_private("plain database columns", &plain_columns(app.store()).await);
}

async fn bad_aid_input_is_refused_with_reasons_and_nothing_stored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let centre = app.coordinator("七尾市社会福祉協議会", &[NANAO]).await;
    let volunteer = app.volunteer(&centre, "山田 花子").await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/aid/requests"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let good = json!({"municipality": NANAO, "category": "food", "lat": LAT, "lon": LON,
                      "items": [{"name": "おにぎり", "quantity": 3}]});
    let cases = [
        (json!({"category": "weapons"}), "category"),
        (
            json!({"items": [{"name": "おにぎり", "quantity": 0}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"name": "おにぎり", "quantity": -4}]}),
            "items[0].quantity",
        ),
        (json!({"items": []}), "items"),
        (json!({"lat": 91.0}), "lat"),
        (json!({"lon": 200.0}), "lon"),
        (json!({"municipality": "172021"}), "municipality"),
        (json!({"urgency": "panic"}), "urgency"),
        (json!({"note": "あ".repeat(201)}), "note"),
        (json!({"contact": {"phone": "abc"}}), "contact.phone"),
        (json!({"shelter_id": "no-such-shelter"}), "shelter_id"),
    ];
    for (change, field) in cases {
        let mut body = good.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let problem = expect_problem(post(body.clone()).await, 400).await;
        assert!(
            problem_fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    let r = app
        .client
        .post(app.url("/v1/aid/requests"))
        .json(
            &json!({"municipality": NANAO, "category": "food", "lat": LAT, "lon": LON,
                      "items": [{"name": "x", "quantity": "many"}]}),
        )
        .send()
        .await
        .unwrap();
    expect_problem(r, 400).await;

    // Offers: a resident cannot offer; a bad reach is named.
    let r = app
        .client
        .post(app.url("/v1/aid/offers"))
        .json(&json!({"category": "food", "lat": LAT, "lon": LON, "items": [{"name": "x", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let r = app
        .post_as(
            &volunteer,
            "/v1/aid/offers",
            json!({"category": "food", "lat": LAT, "lon": LON, "reach_m": -5,
                   "items": [{"name": "x", "quantity": 1}]}),
        )
        .await;
    let problem = expect_problem(r, 400).await;
    assert_eq!(problem_fields(&problem), ["reach_m"]);
    // A volunteer of another municipality's coordinator may not claim here;
    // an office's token is not a volunteer's.
    let other_centre = app.coordinator("金沢市社協", &["172014"]).await;
    let outsider = app.volunteer(&other_centre, "金沢 太郎").await;
    let posted = json_of(post(good.clone()).await, 201).await;
    let id = posted["request"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post_as(
            &outsider,
            &format!("/v1/aid/requests/{id}/claims"),
            json!({"quantity": 1}),
        )
        .await;
    expect_problem(r, 403).await;
    let office = app.token("七尾市", &[NANAO]).await;
    let r = app
        .post_as(
            &office,
            &format!("/v1/aid/requests/{id}/claims"),
            json!({"quantity": 1}),
        )
        .await;
    expect_problem(r, 403).await;
    for quantity in [0, -1] {
        let r = app
            .post_as(
                &volunteer,
                &format!("/v1/aid/requests/{id}/claims"),
                json!({ "quantity": quantity }),
            )
            .await;
        let problem = expect_problem(r, 400).await;
        assert_eq!(problem_fields(&problem), ["quantity"]);
    }
    // A volunteer cannot register volunteers; a coordinator's token cannot
    // change shelters.
    let r = app
        .post_as(&volunteer, "/v1/volunteers", json!({"name": "x"}))
        .await;
    expect_problem(r, 403).await;
    let r = app
        .patch_as(
            &centre,
            &format!(
                "/v1/shelters/{}",
                app.state.index.list(&Default::default())[0].site.id
            ),
            json!({"status": "open"}),
        )
        .await;
    expect_problem(r, 403).await;

    // A suspended coordinator's volunteers are refused, and so is a
    // suspended volunteer; reinstated, they act again.
    let me = json_of(app.get_as(&centre, "/v1/me").await, 200).await;
    let centre_id = me["id"].as_i64().unwrap();
    app.store().set_suspended(centre_id, true).await.unwrap();
    let r = app
        .post_as(
            &volunteer,
            &format!("/v1/aid/requests/{id}/claims"),
            json!({"quantity": 1}),
        )
        .await;
    let problem = expect_problem(r, 403).await;
    assert!(problem["detail"].as_str().unwrap().contains("suspended"));
    app.store().set_suspended(centre_id, false).await.unwrap();
    let volunteer_id = json_of(app.get_as(&volunteer, "/v1/me").await, 200).await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post_as(
            &centre,
            &format!("/v1/volunteers/{volunteer_id}/suspend"),
            json!({}),
        )
        .await;
    assert_eq!(json_of(r, 200).await["suspended"], true);
    let r = app.get_as(&volunteer, "/v1/me").await;
    expect_problem(r, 403).await;

    // Nothing of the refused requests was stored: one request, no claims.
    let (_, list) = app
        .get_json(&format!("/v1/aid/requests?near={LAT},{LON}"))
        .await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
    assert_eq!(list["requests"][0]["claimed"], 0);
    let r = app
        .client
        .get(app.url("/v1/aid/requests?near=95,1&category=weapons&limit=0"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(r, 400).await;
    let fields = problem_fields(&problem);
    for f in ["near", "category", "limit"] {
        assert!(fields.contains(&f.to_owned()), "{f}: {problem}");
    }
}

async fn throttle_lapse_stale_expiry_and_report_and_hide(backend: Backend) {
    let app = TestApp::start(backend).await;
    let centre = app.coordinator("七尾市社会福祉協議会", &[NANAO]).await;
    let volunteer = app.volunteer(&centre, "山田 花子").await;
    let mut ids = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..8 {
        let r = app
            .client
            .post(app.url("/v1/aid/requests"))
            .json(
                &json!({"municipality": NANAO, "category": "clean_up", "lat": LAT, "lon": LON,
                          "items": [{"name": "泥出し", "quantity": 2, "unit": "人"}]}),
            )
            .send()
            .await
            .unwrap();
        let posted = json_of(r, 201).await;
        ids.push(posted["request"]["id"].as_str().unwrap().to_owned());
        keys.push(posted["edit_key"].as_str().unwrap().to_owned());
    }
    let claim = |id: String| {
        let app = &app;
        let volunteer = volunteer.clone();
        async move {
            app.post_as(
                &volunteer,
                &format!("/v1/aid/requests/{id}/claims"),
                json!({"quantity": 1}),
            )
            .await
        }
    };

    // Five undelivered claims with a good (empty) record are fine.
    let mut claim_ids = Vec::new();
    for id in &ids[..5] {
        claim_ids.push(json_of(claim(id.clone()).await, 201).await["claim"]["id"].clone());
    }
    // Two of them lapse: the record is now 0 of 2 delivered.
    exec(
        app.store(),
        &format!(
            "update aid_claim set due_at = '2020-01-01T00:00:00Z' where id in ('{}', '{}')",
            claim_ids[0].as_str().unwrap(),
            claim_ids[1].as_str().unwrap()
        ),
    )
    .await;
    let swept = anpi::usecase::aid::sweep(&app.state.services)
        .await
        .unwrap();
    assert_eq!(swept.lapsed, 2);
    let (_, back) = app.get_json(&format!("/v1/aid/requests/{}", ids[0])).await;
    assert_eq!(back["claimed"], 0, "a lapsed claim gives its units back");
    assert_eq!(back["status"], "open");
    // Three live claims and a 0% record: claims 4 and 5 are allowed (the
    // limit counts live ones), the sixth live one is refused with a reason.
    for id in &ids[5..7] {
        json_of(claim(id.clone()).await, 201).await;
    }
    let problem = expect_problem(claim(ids[7].clone()).await, 429).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("5 undelivered") && detail.contains("0 of 2"),
        "{detail}"
    );
    // Delivering lifts it.
    for c in &claim_ids[2..5] {
        let r = app
            .post_as(
                &volunteer,
                &format!("/v1/aid/claims/{}/delivered", c.as_str().unwrap()),
                json!({}),
            )
            .await;
        json_of(r, 200).await;
    }
    json_of(claim(ids[7].clone()).await, 201).await;

    // Stale after a day without reconfirmation: marked in every answer,
    // and the requester is asked once on their inbox; one call makes it
    // fresh.
    let posted_key = &keys[0];
    let inbox = json_of(
        app.get_as(posted_key, &format!("/v1/aid/requests/{}", ids[0]))
            .await,
        200,
    )
    .await["inbox"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut requester = Ws::connect(&app.base).await;
    requester.subscribe(json!({"channels": [inbox]})).await;
    requester.expect("snapshot").await;
    let a_day_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(25))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    exec(
        app.store(),
        &format!(
            "update aid_request set confirmed_at = '{a_day_ago}' where id = '{}'",
            ids[0]
        ),
    )
    .await;
    let (_, stale) = app.get_json(&format!("/v1/aid/requests/{}", ids[0])).await;
    assert_eq!(stale["stale"], true);
    for expected in [1, 0] {
        let swept = anpi::usecase::aid::sweep(&app.state.services)
            .await
            .unwrap();
        assert_eq!(swept.reminded, expected, "asked once, not every sweep");
    }
    app.wait_published().await;
    let asked = requester.next().await;
    assert_eq!(asked["kind"], "aid.reconfirm");
    assert_eq!(asked["data"]["id"], ids[0].as_str());
    let fresh = json_of(
        app.patch_as(
            &keys[0],
            &format!("/v1/aid/requests/{}", ids[0]),
            json!({"confirm": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(fresh["stale"], false);
    // Expired after three days: the sweep closes it and it leaves the list.
    exec(
        app.store(),
        &format!(
            "update aid_request set confirmed_at = '2020-01-01T00:00:00Z' where id = '{}'",
            ids[0]
        ),
    )
    .await;
    let swept = anpi::usecase::aid::sweep(&app.state.services)
        .await
        .unwrap();
    assert_eq!(swept.expired, 1);
    let (_, gone) = app.get_json(&format!("/v1/aid/requests/{}", ids[0])).await;
    assert_eq!(gone["status"], "expired");
    let r = app
        .patch_as(
            &keys[0],
            &format!("/v1/aid/requests/{}", ids[0]),
            json!({"confirm": true}),
        )
        .await;
    expect_problem(r, 409).await;

    // Three distinct reporters hide a record; the coordinator restores it.
    let target = &ids[6];
    let report = |who: Option<String>| {
        let app = &app;
        let target = target.clone();
        async move {
            let r = app
                .client
                .post(app.url(&format!("/v1/aid/requests/{target}/reports")));
            let r = match who {
                Some(t) => r.bearer_auth(t),
                None => r,
            };
            r.json(&json!({"reason": "spam"})).send().await.unwrap()
        }
    };
    let bad = report(None).await;
    assert_eq!(bad.status(), 202);
    assert_eq!(report(None).await.status(), 202, "the same reporter twice");
    let r = app
        .client
        .post(app.url(&format!("/v1/aid/requests/{target}/reports")))
        .json(&json!({"reason": "boring"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 400).await;
    let (_, still) = app.get_json(&format!("/v1/aid/requests/{target}")).await;
    assert_eq!(still["hidden"], false);
    let other = app.volunteer(&centre, "b").await;
    let third = app.volunteer(&centre, "c").await;
    assert_eq!(report(Some(other)).await.status(), 202);
    assert_eq!(report(Some(third)).await.status(), 202);
    let (status, _) = app.get_json(&format!("/v1/aid/requests/{target}")).await;
    assert_eq!(status, 404, "hidden from the public");
    let queue = json_of(app.get_as(&centre, "/v1/aid/moderation").await, 200).await;
    assert_eq!(queue["requests"][0]["id"], target.as_str());
    assert_eq!(queue["requests"][0]["reports"][0], json!(["spam", 3]));
    expect_problem(
        app.post_as(
            &volunteer,
            &format!("/v1/aid/moderation/requests/{target}"),
            json!({"decision": "restore"}),
        )
        .await,
        403,
    )
    .await;
    let r = app
        .post_as(
            &centre,
            &format!("/v1/aid/moderation/requests/{target}"),
            json!({"decision": "restore"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let (status, back) = app.get_json(&format!("/v1/aid/requests/{target}")).await;
    assert_eq!(status, 200);
    assert_eq!(back["hidden"], false);
    let trail = app.store().audit_trail(target, 20).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"aid.hide") && actions.contains(&"aid.restore"),
        "{actions:?}"
    );
}

async fn a_retried_request_is_stored_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let body = json!({"municipality": NANAO, "category": "medicine", "lat": LAT, "lon": LON,
                      "items": [{"name": "血圧の薬", "quantity": 1}],
                      "contact": {"phone": PHONE}});
    let post = |key: &str, body: &Value| {
        let app = &app;
        let (key, body) = (key.to_owned(), body.clone());
        async move {
            app.client
                .post(app.url("/v1/aid/requests"))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // The answer was lost on a bad network; the phone sends it again.
    let first = json_of(post("retry-1", &body).await, 201).await;
    let again = json_of(post("retry-1", &body).await, 201).await;
    assert_eq!(first["request"]["id"], again["request"]["id"]);
    assert_eq!(first["edit_key"], again["edit_key"]);
    let (_, list) = app
        .get_json(&format!("/v1/aid/requests?near={LAT},{LON}"))
        .await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
    // The same key for something else is refused; a new key is a new request.
    let mut other = body.clone();
    other["items"][0]["quantity"] = json!(2);
    let problem = expect_problem(post("retry-1", &other).await, 422).await;
    assert_eq!(problem_fields(&problem), ["Idempotency-Key"]);
    json_of(post("retry-2", &other).await, 201).await;
    // The edit key opens its own request only.
    let id = first["request"]["id"].as_str().unwrap();
    let second_key = json_of(post("retry-3", &body).await, 201).await["edit_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get_as(&second_key, &format!("/v1/aid/requests/{id}"))
        .await;
    expect_problem(r, 403).await;
    let mine = json_of(
        app.get_as(
            first["edit_key"].as_str().unwrap(),
            &format!("/v1/aid/requests/{id}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(mine["contact"]["phone"], PHONE);
    assert_private("plain database columns", &plain_columns(app.store()).await);
}
