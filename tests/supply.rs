//! Supply points over real HTTP and WebSocket on both backends: an office
//! posts one and a resident's open page hears of it on its area and cell;
//! residents find them nearest first by kind, item and "open now"; a
//! volunteer centre updates stock; a Shift_JIS list is imported with its one
//! bad row reported; and bad input and other municipalities are refused.

mod common;

use std::time::Duration;

use common::ws::Ws;
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    supply_points_are_posted_found_and_heard_live,
    a_municipal_list_is_imported_from_shift_jis,
    bad_supply_input_and_other_municipalities_are_refused,
);

const NANAO: &str = "172022";
const WAJIMA: &str = "172049";
/// Nanao station, and two places near it.
const STATION: (f64, f64) = (37.0432, 136.9674);
const CITY_HALL: (f64, f64) = (37.0430, 136.9671);
const TAZURUHAMA: (f64, f64) = (37.0640, 136.8870);

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.expect("JSON body");
    assert_eq!(got, status, "{body}");
    body
}

/// The next `supply.point` event about `id` on the socket.
async fn next_about(ws: &mut Ws, id: &str) -> Value {
    let kind = "supply.point";
    loop {
        let frame = ws
            .next_within(Duration::from_secs(10))
            .await
            .expect("a frame")
            .unwrap_or_else(|| panic!("no {kind} event"));
        if frame["op"] == "event" && frame["kind"] == kind && frame["data"]["id"] == id {
            return frame;
        }
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["supply_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn supply_points_are_posted_found_and_heard_live(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let centre = app.coordinator("七尾市社会福祉協議会", &[NANAO]).await;
    let cell = anpi::live::channel::Channel::cell_at(
        anpi::domain::shelter::LatLon::new(CITY_HALL.0, CITY_HALL.1).unwrap(),
    )
    .to_string();
    let mut resident = Ws::connect(&app.base).await;
    resident
        .subscribe(json!({"channels": [format!("area:{NANAO}"), cell]}))
        .await;

    // Water at the city hall every day 09:00–17:00 (the whole day, so the
    // test does not depend on the hour it runs at: 00:00–00:00 wraps).
    let water = json_of(
        app.post_as(
            &office,
            "/v1/supply-points",
            json!({
                "municipality": NANAO, "kind": "water", "name": "七尾市役所 給水所",
                "lat": CITY_HALL.0, "lon": CITY_HALL.1, "address": "七尾市袖ケ江町イ部25",
                "hours": [{"opens": "00:00", "closes": "00:00"}],
                "stock": [{"item": "2Lペットボトル", "level": "plenty"}, {"item": "給水袋", "level": "low"}],
                "queue": "short", "wait_minutes": 15, "note": "容器をお持ちください"
            }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(water["posted_by"], "七尾市災害対策本部");
    assert_eq!(water["open_now"], true);
    assert_eq!(water["stale"], false);
    let id = water["id"].as_str().unwrap().to_owned();

    // Heard on both channels, naming who posted it.
    for _ in 0..2 {
        let event = next_about(&mut resident, &id).await;
        assert_eq!(event["data"]["posted_by"], "七尾市災害対策本部");
    }

    // Food further away, open only on one past date: not open now.
    json_of(
        app.post_as(
            &centre,
            "/v1/supply-points",
            json!({
                "municipality": NANAO, "kind": "food", "name": "田鶴浜 炊き出し",
                "lat": TAZURUHAMA.0, "lon": TAZURUHAMA.1,
                "hours": [{"date": "2024-01-10", "opens": "11:00", "closes": "13:00"}],
                "stock": [{"item": "おにぎり", "level": "low"}]
            }),
        )
        .await,
        201,
    )
    .await;

    let near = format!("near={},{}", STATION.0, STATION.1);
    let (status, all) = app.get_json(&format!("/v1/supply-points?{near}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&all),
        ["七尾市役所 給水所", "田鶴浜 炊き出し"],
        "nearest first"
    );
    assert!(all["supply_points"][0]["distance_m"].as_f64().unwrap() < 100.0);
    let (_, food) = app
        .get_json(&format!("/v1/supply-points?{near}&kind=food"))
        .await;
    assert_eq!(ids(&food), ["田鶴浜 炊き出し"]);
    let (_, open) = app
        .get_json(&format!("/v1/supply-points?{near}&open_now=true"))
        .await;
    assert_eq!(ids(&open), ["七尾市役所 給水所"]);
    // An item as a person types it: full-width digits, other case.
    let (_, item) = app
        .get_json(&format!("/v1/supply-points?{near}&item=%EF%BC%92L%E3%83%9A%E3%83%83%E3%83%88%E3%83%9C%E3%83%88%E3%83%AB"))
        .await;
    assert_eq!(ids(&item), ["七尾市役所 給水所"]);
    let (_, listed) = app
        .get_json(&format!("/v1/supply-points?municipality={NANAO}"))
        .await;
    assert_eq!(listed["supply_points"].as_array().unwrap().len(), 2);

    // The volunteer centre reports the water running low, with the version
    // it read; a second change on the old version is refused, not applied.
    let read = app
        .client
        .get(app.url(&format!("/v1/supply-points/{id}")))
        .send()
        .await
        .unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let changed = app
        .client
        .patch(app.url(&format!("/v1/supply-points/{id}")))
        .bearer_auth(&centre)
        .header("if-match", &etag)
        .json(&json!({"stock": [{"item": "2Lペットボトル", "level": "out"}], "queue": "long", "wait_minutes": 40}))
        .send()
        .await
        .unwrap();
    let changed = json_of(changed, 200).await;
    assert_eq!(changed["stock"][0]["level"], "out");
    assert_eq!(changed["confirmed_by"], "七尾市社会福祉協議会");
    let event = next_about(&mut resident, &id).await;
    assert_eq!(event["data"]["queue"], "long");
    let stale = app
        .client
        .patch(app.url(&format!("/v1/supply-points/{id}")))
        .bearer_auth(&office)
        .header("if-match", &etag)
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    let conflict = expect_problem(stale, 409).await;
    assert_eq!(conflict["current"]["queue"], "long");

    // Closed points leave the resident's list unless asked for.
    json_of(
        app.patch_as(
            &office,
            &format!("/v1/supply-points/{id}"),
            json!({"status": "closed"}),
        )
        .await,
        200,
    )
    .await;
    let (_, after) = app.get_json(&format!("/v1/supply-points?{near}")).await;
    assert_eq!(ids(&after), ["田鶴浜 炊き出し"]);
    let (_, with_closed) = app
        .get_json(&format!("/v1/supply-points?{near}&include_closed=true"))
        .await;
    assert_eq!(with_closed["supply_points"].as_array().unwrap().len(), 2);

    // GeoJSON, with the point as the geometry.
    let geo = app
        .client
        .get(app.url(&format!(
            "/v1/supply-points.geojson?municipality={NANAO}&include_closed=true"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(geo.headers()["content-type"], "application/geo+json");
    let geo: Value = geo.json().await.unwrap();
    assert_eq!(geo["features"].as_array().unwrap().len(), 2);
    assert_eq!(geo["features"][0]["geometry"]["type"], "Point");

    // Survives a restart: the index is rebuilt from the database.
    let db = app.stop().await;
    let app = TestApp::on(db, true).await;
    let (status, again) = app.get_json(&format!("/v1/supply-points/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(again["status"], "closed");
    assert_eq!(again["stock"][0]["level"], "out");
    app.stop().await;
}

async fn a_municipal_list_is_imported_from_shift_jis(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let csv = "名称,種別,緯度,経度,時間,在庫,備考\r\n\
               七尾市役所,給水,37.0430,136.9671,00:00-00:00,2Lペットボトル:十分;給水袋:残りわずか,容器持参\r\n\
               田鶴浜地区コミュニティセンター,おにぎり,37.064,136.887,,,\r\n\
               能登島市民センター,入浴,37.118,137.000,10:00-20:00,,自衛隊の入浴支援\r\n";
    let (sjis, _, failed) = encoding_rs::SHIFT_JIS.encode(csv);
    assert!(!failed);
    let path = format!("/v1/municipalities/{NANAO}/supply-points");
    let outcome = json_of(
        app.upload_as(&office, &path, "text/csv", sjis.to_vec())
            .await,
        200,
    )
    .await;
    assert_eq!(outcome["added"], 2);
    assert_eq!(outcome["replaced"], 0);
    assert_eq!(
        outcome["problems"].as_array().unwrap().len(),
        1,
        "{outcome}"
    );
    assert_eq!(outcome["problems"][0]["line"], 3, "{outcome}");
    assert_eq!(outcome["problems"][0]["column"], "種別");

    let (_, listed) = app
        .get_json(&format!("/v1/supply-points?municipality={NANAO}"))
        .await;
    assert_eq!(ids(&listed), ["七尾市役所", "能登島市民センター"]);
    assert_eq!(listed["supply_points"][0]["stock"][1]["level"], "low");
    assert_eq!(listed["supply_points"][1]["kind"], "bath");

    // The same list again replaces, never duplicates.
    let again = json_of(
        app.upload_as(&office, &path, "text/csv", sjis.to_vec())
            .await,
        200,
    )
    .await;
    assert_eq!(
        (again["added"].as_i64(), again["replaced"].as_i64()),
        (Some(0), Some(2))
    );
    let (_, listed) = app
        .get_json(&format!("/v1/supply-points?municipality={NANAO}"))
        .await;
    assert_eq!(listed["supply_points"].as_array().unwrap().len(), 2);

    // Another municipality's office may not upload Nanao's list.
    let wajima = app.token("輪島市災害対策本部", &[WAJIMA]).await;
    expect_problem(
        app.upload_as(&wajima, &path, "text/csv", sjis.to_vec())
            .await,
        403,
    )
    .await;
    app.stop().await;
}

async fn bad_supply_input_and_other_municipalities_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let wajima = app.token("輪島市災害対策本部", &[WAJIMA]).await;
    let centre = app.coordinator("七尾市社会福祉協議会", &[NANAO]).await;
    let volunteer = app.volunteer(&centre, "山田 花子").await;
    let good = json!({"municipality": NANAO, "kind": "water", "name": "給水所", "lat": CITY_HALL.0, "lon": CITY_HALL.1});

    for (body, field) in [
        (json!({"kind": "water"}), "municipality"),
        (
            json!({"municipality": NANAO, "kind": "ramen", "name": "x", "lat": 37.0, "lon": 137.0}),
            "kind",
        ),
        (
            json!({"municipality": NANAO, "kind": "water", "name": "x", "lat": 91.0, "lon": 137.0}),
            "lat",
        ),
        (
            json!({"municipality": NANAO, "kind": "water", "name": "x", "lat": 37.0, "lon": 137.0,
                "hours": [{"opens": "25:00", "closes": "26:00"}]}),
            "hours[0].closes",
        ),
        (
            json!({"municipality": NANAO, "kind": "water", "name": "x", "lat": 37.0, "lon": 137.0,
                "stock": [{"item": "水", "level": "some"}]}),
            "stock[0].level",
        ),
        (
            json!({"municipality": NANAO, "kind": "water", "name": "x", "lat": 37.0, "lon": 137.0,
                "wait_minutes": -5}),
            "wait_minutes",
        ),
    ] {
        let problem = expect_problem(
            app.post_as(&office, "/v1/supply-points", body.clone())
                .await,
            400,
        )
        .await;
        assert!(
            problem_fields(&problem).contains(&field.to_owned()),
            "{body}: {problem}"
        );
    }
    for query in [
        "",
        "?near=north",
        "?municipality=1",
        "?near=37,137&kind=ramen",
        "?near=37,137&open_now=yes",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/v1/supply-points{query}")))
            .send()
            .await
            .unwrap();
        expect_problem(r, 400).await;
    }

    // Only offices and centres of the municipality write.
    expect_problem(
        app.post_as(&wajima, "/v1/supply-points", good.clone())
            .await,
        403,
    )
    .await;
    expect_problem(
        app.post_as(&volunteer, "/v1/supply-points", good.clone())
            .await,
        403,
    )
    .await;
    let r = app
        .client
        .post(app.url("/v1/supply-points"))
        .json(&good)
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let posted = json_of(app.post_as(&office, "/v1/supply-points", good).await, 201).await;
    let path = format!("/v1/supply-points/{}", posted["id"].as_str().unwrap());
    expect_problem(
        app.patch_as(&wajima, &path, json!({"status": "closed"}))
            .await,
        403,
    )
    .await;
    let moved = app
        .patch_as(&office, &path, json!({"municipality": WAJIMA}))
        .await;
    expect_problem(moved, 400).await;
    expect_problem(app.patch_as(&office, &path, json!({})).await, 400).await;
    expect_problem(
        app.patch_as(&office, "/v1/supply-points/nope", json!({"confirm": true}))
            .await,
        404,
    )
    .await;

    // Nothing of the refused writes was stored.
    let (_, listed) = app
        .get_json(&format!(
            "/v1/supply-points?municipality={NANAO}&include_closed=true"
        ))
        .await;
    assert_eq!(listed["supply_points"].as_array().unwrap().len(), 1);
    assert_eq!(listed["supply_points"][0]["status"], "open");
    app.stop().await;
}
