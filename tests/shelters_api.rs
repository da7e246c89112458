//! The shelter registry over HTTP, on both backends: sample data, nearest
//! queries, officials' rights, the audit trail, imports, and bad input that
//! is refused with a clear problem and changes nothing.

mod common;

use common::{Backend, TestApp, expect_problem};
use serde_json::{Value, json};

const NANAO: &str = "172022";
const SAPPORO: &str = "011002";
/// Nanao Junior High School: indoor capacity 1,371.
const SCHOOL: &str = "CC0000000505";

on_both_backends!(
    serves_the_nanao_sample,
    nearest_filters_by_hazard_status_and_room,
    officials_act_only_in_their_municipality,
    occupancy_at_capacity_makes_a_shelter_full,
    two_offices_editing_one_shelter_get_a_conflict_not_an_overwrite,
    bad_queries_get_field_errors,
    bad_uploads_change_nothing,
    gsi_upload_in_shift_jis_is_idempotent,
    changes_survive_a_restart,
    operations_endpoints_work,
);

/// Everything the store holds, to show a refused request changed nothing.
async fn everything(app: &TestApp) -> Vec<anpi::domain::shelter::Shelter> {
    app.store().all_shelters().await.expect("read shelters")
}

async fn serves_the_nanao_sample(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, body) = app.get_json("/v1/shelters?limit=1000").await;
    assert_eq!(status, 200);
    let shelters = body["shelters"].as_array().unwrap();
    assert_eq!(shelters.len(), 112);
    assert!(shelters.iter().all(|s| s["municipality"] == NANAO));
    // A fresh service starts at 2024-01-09 18:00, said so on every shelter
    // the city's list opened.
    let open: Vec<&Value> = shelters
        .iter()
        .filter(|s| s["status"] != "closed")
        .collect();
    assert!(open.len() > 20, "{}", open.len());
    for s in &open {
        assert_eq!(s["as_of"], "2024-01-09T09:00:00Z");
        assert_eq!(s["confirmed_by"], "sample data: 七尾市 2024-01-09 18:00");
        assert_eq!(s["stale"], true, "a state from 2024 is old news");
    }
    let (_, open_near) = app
        .get_json("/v1/shelters?near=37.0432,136.9674&status=open&limit=5")
        .await;
    assert_eq!(open_near["shelters"].as_array().unwrap().len(), 5);

    let (status, school) = app.get_json(&format!("/v1/shelters/{SCHOOL}")).await;
    assert_eq!(status, 200);
    assert_eq!(school["name"], "七尾中学校");
    assert_eq!(school["capacity"]["indoor"], 1371);
    assert_eq!(school["capacity"]["outdoor"], 5470);
    assert_eq!(school["location"]["lat"], 37.03803);
    assert!(
        school["hazards"]
            .as_array()
            .unwrap()
            .contains(&json!("tsunami"))
    );

    let r = app
        .client
        .get(app.url("/v1/shelters.geojson"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let fc: Value = r.json().await.unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), 112);
    assert!(fc["attribution"].as_str().unwrap().contains("raokiey"));
    let feature = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == SCHOOL)
        .unwrap();
    assert_eq!(
        feature["geometry"]["coordinates"],
        json!([136.95849, 37.03803])
    );
    assert_eq!(feature["properties"]["status"], "closed");

    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    app.stop().await;
}

async fn nearest_filters_by_hazard_status_and_room(backend: Backend) {
    let app = TestApp::start_closed(backend).await;
    let (_, body) = app
        .get_json("/v1/shelters?near=37.0432,136.9674&limit=5&hazard=tsunami")
        .await;
    let hits = body["shelters"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    let distances: Vec<f64> = hits
        .iter()
        .map(|h| h["distance_m"].as_f64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(
        hits.iter()
            .all(|h| h["hazards"].as_array().unwrap().contains(&json!("tsunami")))
    );

    // Nothing is open yet.
    let (_, body) = app
        .get_json("/v1/shelters?near=37.0432,136.9674&status=open&has_room=true")
        .await;
    assert_eq!(body["shelters"], json!([]));

    // The office opens the farthest of the five: now it is the nearest open one.
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let far = hits[4]["id"].as_str().unwrap().to_owned();
    let r = app
        .patch_as(
            &token,
            &format!("/v1/shelters/{far}"),
            json!({"status": "open", "occupancy": 3}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (_, body) = app
        .get_json("/v1/shelters?near=37.0432,136.9674&hazard=tsunami&status=open&has_room=true")
        .await;
    assert_eq!(body["shelters"].as_array().unwrap().len(), 1);
    assert_eq!(body["shelters"][0]["id"], far.as_str());
    assert_eq!(body["shelters"][0]["occupancy"], 3);
    assert_eq!(body["shelters"][0]["updated_by"], "Nanao HQ");
    app.stop().await;
}

async fn officials_act_only_in_their_municipality(backend: Backend) {
    let app = TestApp::start(backend).await;
    let nanao = app.token("Nanao HQ", &[NANAO]).await;
    let sapporo = app.token("Sapporo HQ", &[SAPPORO]).await;
    let url = app.url(&format!("/v1/shelters/{SCHOOL}"));
    let before = everything(&app).await;

    let r = app
        .client
        .patch(&url)
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let r = app
        .client
        .patch(&url)
        .bearer_auth("anpi_not-a-token")
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    let r = app
        .client
        .patch(&url)
        .bearer_auth(&sapporo)
        .json(&json!({"status": "open"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(r, 403).await;
    assert!(problem["detail"].as_str().unwrap().contains(NANAO));
    let r = app
        .upload_as(
            &sapporo,
            &format!("/v1/municipalities/{NANAO}/shelter-status"),
            "text/csv",
            "ID,地区,名称,人数,時点\n",
        )
        .await;
    expect_problem(r, 403).await;
    let r = app
        .get_as(&sapporo, &format!("/v1/shelters/{SCHOOL}/history"))
        .await;
    expect_problem(r, 403).await;
    assert_eq!(
        everything(&app).await,
        before,
        "refused requests changed nothing"
    );

    let r = app
        .client
        .patch(&url)
        .bearer_auth(&nanao)
        .json(&json!({"status": "open", "occupancy": 120,
            "needs": ["water", "blankets_clothing", "water"], "needs_note": " 灯油ストーブ用の灯油 "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let shelter: Value = r.json().await.unwrap();
    assert_eq!(shelter["status"], "open");
    assert_eq!(shelter["needs"], json!(["water", "blankets_clothing"]));
    assert_eq!(shelter["needs_note"], "灯油ストーブ用の灯油");
    assert!(shelter["as_of"].is_string());

    // The audit trail says who changed what, before and after.
    let history: Value = app
        .get_as(&nanao, &format!("/v1/shelters/{SCHOOL}/history"))
        .await
        .json()
        .await
        .unwrap();
    let latest = &history["events"][0];
    assert_eq!(latest["action"], "shelter.update");
    assert!(latest["actor"].as_str().unwrap().ends_with("Nanao HQ"));
    let before: Value = serde_json::from_str(latest["before"].as_str().unwrap()).unwrap();
    let after: Value = serde_json::from_str(latest["after"].as_str().unwrap()).unwrap();
    assert_eq!(before["status"], "closed");
    assert_eq!(after["status"], "open");
    assert_eq!(after["occupancy"], 120);
    app.stop().await;
}

async fn two_offices_editing_one_shelter_get_a_conflict_not_an_overwrite(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (first, second) = (
        app.token("本部 A", &[NANAO]).await,
        app.token("本部 B", &[NANAO]).await,
    );
    let path = format!("/v1/shelters/{SCHOOL}");
    let read = app.client.get(app.url(&path)).send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let patch = |token: &str, etag: &str, body: Value| {
        let (app, path) = (&app, &path);
        let (token, etag) = (token.to_owned(), etag.to_owned());
        async move {
            app.client
                .patch(app.url(path))
                .bearer_auth(token)
                .header("if-match", etag)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // Both read the same state; the first to save wins.
    let r = patch(&first, &etag, json!({"status": "open", "occupancy": 120})).await;
    assert_eq!(r.status(), 200);
    let newer = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    let r = patch(&second, &etag, json!({"status": "closed"})).await;
    let problem = expect_problem(r, 409).await;
    assert_eq!(problem["type"], "urn:anpi:problem:edit-conflict");
    assert!(problem["detail"].as_str().unwrap().contains("本部 A"));
    assert_eq!(problem["current"]["status"], "open");
    assert_eq!(problem["current"]["occupancy"], 120);
    let (_, now) = app.get_json(&path).await;
    assert_eq!(now["status"], "open", "nothing of the second edit applied");
    // With the current version it goes through; a bad tag is named.
    let r = patch(&second, &newer, json!({"status": "closed"})).await;
    assert_eq!(r.status(), 200);
    let r = patch(&second, "yesterday", json!({"status": "open"})).await;
    let problem = expect_problem(r, 400).await;
    assert_eq!(problem["errors"][0]["field"], "If-Match");
    // Reconfirming changes nothing but the freshness.
    let r = app
        .patch_as(&first, &path, json!({"status": "open", "occupancy": 50}))
        .await;
    let before: Value = r.json().await.unwrap();
    assert_eq!(before["stale"], false);
    assert_eq!(before["confirmed_by"], "本部 A");
    let r = app.patch_as(&second, &path, json!({"confirm": true})).await;
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["occupancy"], 50);
    assert_eq!(after["confirmed_by"], "本部 B");
    app.stop().await;
}

async fn occupancy_at_capacity_makes_a_shelter_full(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let path = format!("/v1/shelters/{SCHOOL}");
    let patch = async |body: Value| -> Value {
        app.patch_as(&token, &path, body)
            .await
            .json()
            .await
            .unwrap()
    };
    let s = patch(json!({"status": "open", "occupancy": 10})).await;
    assert_eq!(s["status"], "open");
    let s = patch(json!({"occupancy": 1371})).await;
    assert_eq!(s["status"], "full");
    let (_, body) = app
        .get_json("/v1/shelters?near=37.03803,136.95849&limit=3&has_room=true")
        .await;
    assert!(
        body["shelters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["id"] != SCHOOL)
    );
    let s = patch(json!({"occupancy": 1200})).await;
    assert_eq!(s["status"], "open");
    // An explicit status wins over the count.
    let s = patch(json!({"status": "open", "occupancy": 1500})).await;
    assert_eq!(s["status"], "open");
    app.stop().await;
}

async fn bad_queries_get_field_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (query, field) in [
        ("near=123,136.9", "near"),
        ("near=37.0,200", "near"),
        ("near=37.0", "near"),
        ("near=north,east", "near"),
        ("hazard=meteor", "hazard"),
        ("status=opened", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("has_room=yes", "has_room"),
        ("municipality=172023", "municipality"),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/v1/shelters?{query}")))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(r, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    // Several bad fields are all named at once.
    let r = app
        .client
        .get(app.url("/v1/shelters?near=91,0&hazard=meteor"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(r, 400).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);

    let token = app.token("Nanao HQ", &[NANAO]).await;
    let before = everything(&app).await;
    for (body, field) in [
        (json!({"status": "opened"}), "status"),
        (json!({"occupancy": -1}), "occupancy"),
        (json!({"occupancy": "many"}), "occupancy"),
        (json!({"needs": ["water", "毛布"]}), "needs[1]"),
        (json!({"needs_note": "x".repeat(201)}), "needs_note"),
        (json!({}), "body"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let r = app
            .patch_as(&token, &format!("/v1/shelters/{SCHOOL}"), body.clone())
            .await;
        let problem = expect_problem(r, 400).await;
        let got = problem["errors"][0]["field"].as_str().unwrap();
        assert!(
            got == field || (field == "body" && got == "."),
            "{body}: {got}"
        );
    }
    let r = app
        .client
        .patch(app.url(&format!("/v1/shelters/{SCHOOL}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"status\": ")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400).await;
    let r = app
        .patch_as(&token, "/v1/shelters/NO-SUCH-ID", json!({"status": "open"}))
        .await;
    expect_problem(r, 404).await;
    let r = app
        .client
        .get(app.url("/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404).await;
    assert_eq!(everything(&app).await, before);
    app.stop().await;
}

async fn bad_uploads_change_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let before = everything(&app).await;
    let upload = |path: &str, content_type: &str, body: Vec<u8>| {
        let request = if path.contains("shelter-status") {
            app.client.put(app.url(path))
        } else {
            app.client.post(app.url(path))
        };
        request
            .bearer_auth(&token)
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let import = "/v1/shelters/import";
    let status = "/v1/municipalities/172022/shelter-status";
    let reference = std::fs::read(common::geodata().join("reference_data.csv")).unwrap();

    // Not CSV.
    let r = upload(import, "application/json", b"{}".to_vec())
        .await
        .unwrap();
    expect_problem(r, 415).await;
    // UTF-16 is not a municipal encoding.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "ID,名称\n".encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    let r = upload(import, "text/csv", utf16).await.unwrap();
    let problem = expect_problem(r, 422).await;
    assert_eq!(problem["errors"][0]["field"], "encoding");
    // Bytes that are neither UTF-8 nor Shift_JIS.
    let r = upload(import, "text/csv", vec![0x80, 0xFF, 0xFE, 0xFD, 0x0A])
        .await
        .unwrap();
    expect_problem(r, 422).await;
    // A header that is no known layout.
    let r = upload(import, "text/csv", b"name,lat,lon\nA,1,2\n".to_vec())
        .await
        .unwrap();
    let problem = expect_problem(r, 422).await;
    assert_eq!(problem["errors"][0]["field"], "header");
    // Rows of another municipality only.
    let sapporo_rows = String::from_utf8(reference.clone())
        .unwrap()
        .replace(",172022,", ",011002,");
    let r = upload(import, "text/csv", sapporo_rows.into_bytes())
        .await
        .unwrap();
    expect_problem(r, 403).await;
    // A snapshot with one unreadable headcount is refused whole: closing or
    // opening the others on a partial list would mislead residents.
    let snapshot = "ID,地区,名称,人数,時点\n\
                    CC0000000518,袖ケ江,山王小学校,180,令和6年1月13日午前6時\n\
                    CC0000000504,御祓,御祓地区コミュニティセンター,many,令和6年1月13日午前6時\n";
    let r = upload(status, "text/csv", snapshot.as_bytes().to_vec())
        .await
        .unwrap();
    let problem = expect_problem(r, 422).await;
    assert_eq!(problem["errors"][0]["line"], 3);
    assert_eq!(problem["errors"][0]["field"], "人数");
    // A snapshot naming another municipality's shelter.
    let r = upload(
        "/v1/municipalities/172022/shelter-status",
        "text/csv",
        "ID,地区,名称,人数,時点\nCC0000000518,袖ケ江,山王小学校,180,令和6年1月13日午前6時\n"
            .as_bytes()
            .to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "a good snapshot is applied");
    let after_good = everything(&app).await;
    assert_ne!(after_good, before);
    let r = upload(
        "/v1/municipalities/17202x/shelter-status",
        "text/csv",
        "ID,地区,名称,人数,時点\n".as_bytes().to_vec(),
    )
    .await
    .unwrap();
    let problem = expect_problem(r, 400).await;
    assert_eq!(problem["errors"][0]["field"], "code");
    assert_eq!(everything(&app).await, after_good);
    app.stop().await;
}

/// The national GSI layout, as a prefecture would send it: Shift_JIS.
const GSI_CSV: &str = "NO,共通ID,都道府県名及び市町村名,施設・場所名,住所,洪水,崖崩れ、土石流及び地滑り,高潮,地震,津波,大規模な火事,内水氾濫,火山現象,指定避難所との住所同一,緯度,経度,備考\n\
1,E0110000001202,北海道札幌市,札幌市立中央小学校,北海道札幌市中央区南３条西１０丁目,1,1,,1,,1,1,,,43.0552,141.3420,\n\
2,E0110000001203,北海道札幌市,大通公園,北海道札幌市中央区大通西,,,,1,,1,,,,43.0600,141.3468,\n\
3,E1720200000001,石川県七尾市,七尾の場所,石川県七尾市,1,,,1,,,,,,37.04,136.96,\n";

async fn gsi_upload_in_shift_jis_is_idempotent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Sapporo HQ", &[SAPPORO]).await;
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(GSI_CSV);
    assert!(!unmappable);
    let post = || {
        app.client
            .post(app.url("/v1/shelters/import"))
            .bearer_auth(&token)
            .header("content-type", "text/csv; charset=Shift_JIS")
            .body(sjis.to_vec())
            .send()
    };
    let first: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(first["inserted"], 2);
    // The Nanao row is not this token's to import.
    assert_eq!(first["problems"].as_array().unwrap().len(), 1);
    assert_eq!(first["problems"][0]["line"], 4);
    let second: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(second["inserted"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], 2);

    let (_, park) = app.get_json("/v1/shelters/E0110000001203").await;
    assert_eq!(park["municipality"], SAPPORO);
    assert_eq!(park["name"], "大通公園");
    assert_eq!(park["hazards"], json!(["earthquake", "fire"]));
    let (_, near) = app.get_json("/v1/shelters?near=43.06,141.35&limit=2").await;
    assert_eq!(near["shelters"][0]["id"], "E0110000001203");
    app.stop().await;
}

async fn changes_survive_a_restart(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let r = app
        .patch_as(
            &token,
            &format!("/v1/shelters/{SCHOOL}"),
            json!({"status": "unsafe", "needs": ["other"], "needs_note": "structural check"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let acknowledged: Value = r.json().await.unwrap();
    let db = app.stop().await;

    // A second start neither reloads the sample over the data nor loses it.
    let app = TestApp::on(db, true).await;
    let (_, now) = app.get_json(&format!("/v1/shelters/{SCHOOL}")).await;
    assert_eq!(now, acknowledged);
    let (_, all) = app.get_json("/v1/shelters?limit=1000").await;
    assert_eq!(all["shelters"].as_array().unwrap().len(), 112);
    // The token still works: its hash key was kept.
    let r = app
        .patch_as(
            &token,
            &format!("/v1/shelters/{SCHOOL}"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn operations_endpoints_work(backend: Backend) {
    let app = TestApp::start(backend).await;
    // An unknown page: a browser gets a page with the way back, a program
    // a problem.
    let page = app
        .client
        .get(app.url("/no-such-page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("ページが見つかりません") && text.contains("Page not found"));
    let r = app
        .client
        .get(app.url("/no-such-page"))
        .send()
        .await
        .unwrap();
    expect_problem(r, 404).await;

    // A page is asked about again each time (a few bytes with its ETag);
    // the script it names, by version, is kept a year.
    let page = app.client.get(app.url("/safety")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let etag = page.headers()["etag"].clone();
    let html = page.text().await.unwrap();
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(script.starts_with("safety.js?v="), "{script}");
    let r = app.client.get(app.url(&format!("/{script}"))).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let stale = app.client.get(app.url("/safety.js?v=0"));
    let stale = stale.send().await.unwrap();
    assert_eq!(stale.headers()["cache-control"], "no-cache");
    let again = app.client.get(app.url("/safety"));
    let again = again.header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);

    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["database"],
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );

    let _ = app.get_json("/v1/shelters?near=37.04,136.96").await;
    let metrics = common::metrics(&app.base).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/v1/shelters\"")
            && l.contains("status=\"200\"")),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    // The OpenAPI document covers every endpoint the router serves.
    let (_, doc) = app.get_json("/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/shelters",
        "/v1/shelters.geojson",
        "/v1/shelters/{id}",
        "/v1/shelters/{id}/history",
        "/v1/shelters/import",
        "/v1/municipalities/{code}/shelter-status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
    assert!(paths["/v1/shelters/{id}"].get("patch").is_some());
    app.stop().await;
}
