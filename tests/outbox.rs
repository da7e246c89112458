//! The transactional outbox end to end, with real processes and clients: a
//! CLI import reaches a running server's subscribers; what an instance
//! without a relay committed before it was killed goes out after a restart,
//! in order and once; Redis away for 30 s under load costs no memory and
//! loses nothing; and a municipality finds its incidents among many others.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anpi::domain::municipality::MunicipalityCode;
use anpi::domain::shelter::Hazard;
use anpi::store::{Actor, NewIncident};
use common::follow::Follower;
use common::procs::{self, Instance, Redis};
use common::ws::Ws;
use common::{Backend, TestApp, TestDb};
use serde_json::{Value, json};

on_both_backends!(
    a_cli_import_reaches_a_running_server_live,
    a_municipality_sees_all_its_incidents_among_1500_others
);

const NANAO: &str = "172022";
const AREA: &str = "area:172022";
/// Nanao's city centre.
const NEAR: &str = "37.0432,136.9674";
/// The first open-shelter snapshot of the Noto earthquake in Nanao.
const SNAPSHOT: &str = "history/open_shelter_Nanao-shi_2024-01-09-1800.csv";

/// The shelter ids a snapshot file lists (its `ID` column), read apart from
/// the service's own parser.
fn ids_in(path: &std::path::Path) -> BTreeSet<String> {
    let mut reader = csv::Reader::from_path(path).expect("the snapshot file opens");
    let headers = reader.headers().expect("a header row").clone();
    assert_eq!(&headers[0], "ID", "{headers:?}");
    reader
        .records()
        .map(|r| r.expect("a readable row")[0].to_owned())
        .collect()
}

/// The ids `GET /v1/shelters?near=…&status=open&limit=50` lists, each
/// checked to be open.
async fn listed_open(app: &TestApp) -> BTreeSet<String> {
    let (status, body) = app
        .get_json(&format!("/v1/shelters?near={NEAR}&status=open&limit=50"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["shelters"]
        .as_array()
        .expect("shelters")
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "open", "{s}");
            s["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

async fn a_cli_import_reaches_a_running_server_live(backend: Backend) {
    let app = TestApp::start_closed(backend).await;
    let file = common::geodata().join(SNAPSHOT);
    let in_file = ids_in(&file);
    assert!(in_file.len() > 10, "{in_file:?}");
    assert_eq!(listed_open(&app).await, BTreeSet::new(), "none open yet");

    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe(json!({"channels": [AREA]})).await;
    let snapshot = ws.expect("snapshot").await;
    let epoch = snapshot["epoch"].clone();
    let mut last = snapshot["seq"].as_u64().expect("seq");

    // Another process writes the database the server serves.
    let out = {
        let (url, file) = (app.db.url.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_anpi"))
                .args(["import", "shelter-status"])
                .arg(&file)
                .args(["--municipality", NANAO])
                .env("DATABASE_URL", url)
                .env_remove("ANPI_SECRET")
                .output()
                .expect("anpi import runs")
        })
        .await
        .expect("the import's thread")
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).expect("the outcome, as JSON");
    assert_eq!(outcome["applied"], true, "{outcome}");
    assert_eq!(
        outcome["open"].as_u64(),
        Some(in_file.len() as u64),
        "{outcome}"
    );

    // The server's relay publishes what the CLI committed: one event per
    // listed shelter, in sequence, and none for a shelter not listed.
    let mut opened = BTreeMap::<String, String>::new();
    while opened.len() < in_file.len() {
        let event = ws.expect("event").await;
        assert_eq!(event["epoch"], epoch, "{event}");
        assert_eq!(event["seq"].as_u64(), Some(last + 1), "{event}");
        last += 1;
        assert_eq!(event["kind"], "shelter.updated", "{event}");
        let id = event["data"]["id"].as_str().expect("id").to_owned();
        assert!(in_file.contains(&id), "an event for {id}, not in the file");
        let status = event["data"]["status"].as_str().expect("status").to_owned();
        assert!(
            status == "open" || status == "full",
            "{id} opened as {status}"
        );
        assert!(opened.insert(id.clone(), status).is_none(), "{id} twice");
    }
    let open: BTreeSet<String> = opened
        .iter()
        .filter(|(_, s)| *s == "open")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(open.len() > 10, "{opened:?}");

    // The server's index follows the `registry` event: the search lists
    // them open, with no restart.
    let mut listed = BTreeSet::new();
    for _ in 0..150 {
        listed = listed_open(&app).await;
        if listed == open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listed, open,
        "the search never showed the imported shelters open"
    );
    app.stop().await;
}

async fn a_municipality_sees_all_its_incidents_among_1500_others(backend: Backend) {
    let app = TestApp::start(backend).await;
    let komatsu = MunicipalityCode::parse("172031").expect("Komatsu's code");
    let now = chrono::Utc::now();
    for i in 0..1500 {
        app.store()
            .create_incident(
                &Actor::Operator("test"),
                NewIncident {
                    name: format!("大雨 {i}"),
                    hazard: Hazard::Flood,
                    municipalities: vec![komatsu.clone()],
                    started_at: now - chrono::TimeDelta::seconds(i),
                },
            )
            .await
            .expect("an incident stored");
    }
    // Nanao's three started before all of those: a listing that took the
    // newest 1,000 and filtered afterwards would show none of them.
    let token = app.token("Nanao HQ", &[NANAO]).await;
    let mut ours = Vec::new();
    for started in [
        "2024-01-01T16:10:00+09:00",
        "2024-01-02T08:00:00+09:00",
        "2024-01-03T12:30:00+09:00",
    ] {
        let r = app
            .post_as(
                &token,
                "/v1/incidents",
                json!({"name": "能登半島地震", "hazard": "earthquake", "municipalities": [NANAO], "started_at": started}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let incident: Value = r.json().await.expect("incident");
        ours.push(incident["id"].as_str().expect("id").to_owned());
    }
    ours.reverse(); // newest first
    for query in [
        "municipality=172022",
        "municipality=172022&active=true",
        "active=true&municipality=172022",
    ] {
        let (status, body) = app.get_json(&format!("/v1/incidents?{query}")).await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<&str> = body["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .map(|i| i["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ours, "{query}");
    }
    let (_, theirs) = app.get_json("/v1/incidents?municipality=172031").await;
    assert_eq!(
        theirs["incidents"].as_array().expect("incidents").len(),
        1000,
        "the others, up to the listing's limit"
    );
    app.stop().await;
}

// ---- with processes: an `anpi` instance, PostgreSQL, a private Redis ----

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

async fn open_incident(http: &reqwest::Client, base: &str, token: &str) -> String {
    let r = http
        .post(format!("{base}/v1/incidents"))
        .bearer_auth(token)
        .json(&json!({"name": "能登半島地震", "hazard": "earthquake", "municipalities": [NANAO]}))
        .send()
        .await
        .expect("POST incident");
    assert_eq!(r.status(), 201);
    let incident: Value = r.json().await.expect("incident");
    incident["id"].as_str().expect("id").to_owned()
}

/// The ids of the `n` shelters nearest Nanao's centre.
async fn nearest_shelters(http: &reqwest::Client, base: &str, n: usize) -> Vec<String> {
    let body: Value = http
        .get(format!("{base}/v1/shelters?near={NEAR}&limit={n}"))
        .send()
        .await
        .expect("GET shelters")
        .json()
        .await
        .expect("shelters");
    let ids: Vec<String> = body["shelters"]
        .as_array()
        .expect("shelters")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), n);
    ids
}

/// A check-in that must be acknowledged (201); its receipt.
async fn check_in(http: &reqwest::Client, base: &str, incident: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}/v1/incidents/{incident}/checkins"))
        .json(&body)
        .send()
        .await
        .expect("POST check-in");
    let status = r.status();
    let receipt: Value = r.json().await.expect("a JSON answer");
    assert_eq!(status, 201, "{receipt}");
    receipt
}

/// A shelter's occupancy set by the office; the shelter as answered (200).
async fn set_occupancy(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    occupancy: i64,
) -> Value {
    let r = http
        .patch(format!("{base}/v1/shelters/{id}"))
        .bearer_auth(token)
        .json(&json!({"occupancy": occupancy}))
        .send()
        .await
        .expect("PATCH shelter");
    let status = r.status();
    let body: Value = r.json().await.expect("a JSON answer");
    assert_eq!(status, 200, "{body}");
    body
}

/// Asserts that nothing arrives on `ws` for a while (events held back).
async fn quiet(ws: &mut Ws, what: &str) {
    match ws.next_within(Duration::from_secs(2)).await {
        Ok(None) => {}
        other => panic!("{what}: expected nothing, got {other:?}"),
    }
}

/// `subscribed`'s (seq, epoch) of its only channel.
fn position(subscribed: &Value) -> (u64, String) {
    let c = &subscribed["channels"][0];
    (
        c["seq"].as_u64().expect("seq"),
        c["epoch"].as_str().expect("epoch").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_before_a_crash_reach_subscribers_after_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = Redis::start();
    let env = [("DATABASE_URL", db.url.clone()), ("REDIS_URL", redis.url())];
    let mut held_env = env.to_vec();
    held_env.push(("ANPI_RELAY", "false".to_owned()));
    let a = Instance::start(&held_env);
    let office = procs::token(&db.url, NANAO);
    let http = http();
    let incident = open_incident(&http, &a.base, &office).await;
    let shelters = nearest_shelters(&http, &a.base, 5).await;

    let mut area = Ws::connect(&a.base).await;
    let sub = area.subscribe(json!({"channels": [AREA]})).await;
    let (area_seq, area_epoch) = position(&sub);
    assert_eq!(area.expect("snapshot").await["seq"], area_seq);

    let first = check_in(
        &http,
        &a.base,
        &incident,
        json!({"phone": "0767-52-0001", "name": "能登 一郎", "statuses": ["safe", "at_home"]}),
    )
    .await;
    let person = format!("person:{}", first["person_token"].as_str().expect("token"));
    let mut family = Ws::connect(&a.base).await;
    let sub = family.subscribe(json!({"channels": [&person]})).await;
    let (person_seq, person_epoch) = position(&sub);
    assert_eq!(family.expect("snapshot").await["kind"], "person.snapshot");

    // 20 changes to 5 shelters and 50 check-ins, all committed (answered).
    let mut last_patch = HashMap::new();
    for round in 1..=4 {
        for (i, id) in shelters.iter().enumerate() {
            let shelter = set_occupancy(&http, &a.base, &office, id, round * 10 + i as i64).await;
            last_patch.insert(id.clone(), shelter);
        }
    }
    for n in 2..=50 {
        check_in(
            &http,
            &a.base,
            &incident,
            json!({"phone": format!("0767-52-{n:04}"), "name": format!("住民 {n}"), "statuses": ["safe"]}),
        )
        .await;
    }

    // No relay here: the events wait in the outbox, and nobody hears of them.
    quiet(&mut area, AREA).await;
    quiet(&mut family, &person).await;
    let pool = sqlx::PgPool::connect(&db.url).await.expect("PostgreSQL");
    // Each row holds a change's events of one shard, a line each:
    // channel TAB kind TAB data.
    let rows: Vec<String> = sqlx::query_scalar("select events from outbox order by shard, id")
        .fetch_all(&pool)
        .await
        .expect("the held events");
    let held: Vec<(String, String, String)> = rows
        .iter()
        .flat_map(|r| r.lines())
        .map(|line| {
            let mut f = line.splitn(3, '\t');
            let mut next = || f.next().expect("channel, kind, data").to_owned();
            (next(), next(), next())
        })
        .collect();
    // (Held too: the sample shelters this instance loaded at its start.)
    let patched_events = held
        .iter()
        .filter(|(channel, _, data)| {
            let data: Value = serde_json::from_str(data).expect("JSON");
            channel == AREA && data["updated_by"] == "test office"
        })
        .count();
    assert_eq!(patched_events, 20, "one held area event per PATCH");
    let checkins_held = held
        .iter()
        .filter(|(channel, _, _)| channel.starts_with("person:"))
        .count();
    assert_eq!(checkins_held, 50, "one held person event per check-in");

    // Killed, with all of it still unpublished; a normal instance takes over.
    drop(area);
    drop(family);
    drop(a); // SIGKILL
    let a2 = Instance::start(&env);

    let mut area = Ws::connect(&a2.base).await;
    let sub = area
        .subscribe(
            json!({"channels": [AREA], "since": {AREA: {"seq": area_seq, "epoch": area_epoch}}}),
        )
        .await;
    assert_eq!(sub["channels"][0]["recovered"], true, "{sub}");
    let mut seen = HashMap::<String, Value>::new();
    // One channel lives in one shard, so its events are in written order.
    let area_held = held.iter().filter(|(channel, _, _)| channel == AREA);
    for (i, (_, kind, data)) in area_held.enumerate() {
        let event = area.expect("event").await;
        assert_eq!(event["epoch"], area_epoch.as_str(), "{event}");
        assert_eq!(
            event["seq"].as_u64(),
            Some(area_seq + 1 + i as u64),
            "consecutive from since + 1: {event}"
        );
        assert_eq!(event["kind"], kind.as_str());
        let data: Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(event["data"], data, "the held event, as written");
        seen.insert(
            event["data"]["id"].as_str().expect("id").to_owned(),
            event["data"].clone(),
        );
    }
    quiet(&mut area, "after the held events (none twice)").await;
    for (id, answered) in &last_patch {
        assert_eq!(&seen[id], answered, "{id} ends as its last PATCH left it");
    }

    let mut family = Ws::connect(&a2.base).await;
    let sub = family
        .subscribe(json!({"channels": [&person], "since": {&person: {"seq": person_seq, "epoch": person_epoch}}}))
        .await;
    assert_eq!(sub["channels"][0]["recovered"], true, "{sub}");
    let event = family.expect("event").await;
    assert_eq!(event["seq"].as_u64(), Some(person_seq + 1), "{event}");
    assert_eq!(event["kind"], "checkin");
    assert_eq!(event["data"]["person_token"], first["person_token"]);
    assert_eq!(event["data"]["name"], "能登 一郎");
    assert_eq!(event["data"]["statuses"], json!(["safe", "at_home"]));
    quiet(&mut family, "after the check-in (none twice)").await;

    common::wait_outbox_empty(&db.url, Duration::from_secs(30)).await;
    pool.close().await;
    drop(a2);
}

/// Check-in clients of the load.
const CLIENTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_for_30_s_costs_no_memory_and_loses_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut redis = Redis::start();
    let instance = Instance::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis.url()),
        // One address and twenty phones make all the load: the limits are
        // not what is tested.
        ("ANPI_CHECKIN_PER_PHONE", "1000000".to_owned()),
        ("ANPI_CHECKIN_PER_ADDRESS", "1000000".to_owned()),
    ]);
    let base = instance.base.clone();
    let office = procs::token(&db.url, NANAO);
    let http = http();
    let incident = open_incident(&http, &base, &office).await;
    let shelter = nearest_shelters(&http, &base, 1).await.remove(0);

    // A family watches one person; the area is watched too.
    let phone = "0767-53-1111";
    let body = |message: &str| json!({"phone": phone, "name": "能登 花子", "statuses": ["safe"], "message": message});
    let watched = check_in(&http, &base, &incident, body("before")).await;
    let person = format!(
        "person:{}",
        watched["person_token"].as_str().expect("token")
    );
    let mut family = Ws::connect(&base).await;
    family.subscribe(json!({"channels": [&person]})).await;
    family.expect("snapshot").await;
    let area = Follower::subscribe(&base, AREA).await;

    // The load: check-ins without pause, and a shelter change every second;
    // both sockets read all along.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for client in 0..CLIENTS {
        let (http, base, incident) = (http.clone(), base.clone(), incident.clone());
        let (stop, acknowledged, refused) = (stop.clone(), acknowledged.clone(), refused.clone());
        load.push(tokio::spawn(async move {
            let body = json!({
                "phone": format!("080-{client:04}-0000"),
                "name": format!("負荷 {client}"),
                "statuses": ["safe"],
            });
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{base}/v1/incidents/{incident}/checkins"))
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let why = format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        refused.lock().unwrap().push(why);
                    }
                    Err(e) => refused.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    let occupancy = Arc::new(AtomicI64::new(0));
    let patcher = {
        let (http, base, office, shelter) =
            (http.clone(), base.clone(), office.clone(), shelter.clone());
        let (stop, occupancy) = (stop.clone(), occupancy.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let next = occupancy.load(Ordering::Relaxed) + 1;
                set_occupancy(&http, &base, &office, &shelter, next).await;
                occupancy.store(next, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let area_reader = {
        let stop = stop.clone();
        let mut area = area;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                area.step(Duration::from_millis(500)).await;
            }
            area
        })
    };
    let family_reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut frames = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match family.next_within(Duration::from_millis(500)).await {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => {}
                    Err(why) => panic!("the family's socket was lost: {why}"),
                }
            }
            (family, frames)
        })
    };

    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_before = instance.rss_kib();
    let acknowledged_before = acknowledged.load(Ordering::Relaxed);

    // Redis is gone for 30 s, with everything it held; the load goes on.
    redis.kill();
    check_in(&http, &base, &incident, body("during")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let rss_outage_end = instance.rss_kib();
    let acknowledged_during = acknowledged.load(Ordering::Relaxed) - acknowledged_before;
    let held_at_outage_end = common::outbox_backlog(&db.url).await;
    redis.restart();

    // Some more load with Redis back, then the last changes.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load client");
    }
    patcher.await.expect("the patcher");
    let acknowledged_total = acknowledged.load(Ordering::Relaxed);
    let last = occupancy.load(Ordering::Relaxed) + 1;
    set_occupancy(&http, &base, &office, &shelter, last).await;
    check_in(&http, &base, &incident, body("after")).await;

    common::wait_outbox_empty(&db.url, Duration::from_secs(120)).await;
    let rss_after = instance.rss_kib();
    println!(
        "VmRSS of the instance: {rss_before} KiB before the outage, {rss_outage_end} KiB at its end, \
         {rss_after} KiB after recovery"
    );
    println!(
        "check-ins acknowledged: {acknowledged_during} during the 30 s outage \
         ({held_at_outage_end} events held in the outbox at its end), {acknowledged_total} in all"
    );
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "{} check-ins not acknowledged, e.g. {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    assert!(
        acknowledged_during > 0,
        "check-ins go on while Redis is away"
    );
    assert!(
        held_at_outage_end > 0,
        "the outage's events waited in the outbox"
    );
    assert!(
        rss_outage_end <= rss_before + 64 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_outage_end} KiB while Redis was away"
    );

    // The area's watcher ends with the shelter's last state (replayed,
    // reconnected with since, or resynced: no silent gap either way).
    let mut area = area_reader.await.expect("the area's reader");
    area.until(Duration::from_secs(60), |f| {
        f.field(&shelter, "occupancy") == Some(&json!(last))
    })
    .await;
    println!(
        "area watcher: {} events, {} resyncs, {} reconnects",
        area.events, area.resyncs, area.reconnects
    );

    // The family hears the check-in made after the outage; the one made
    // during it came as an event, or a resync told them to look again —
    // and the look-up has it.
    let (mut family, mut frames) = family_reader.await.expect("the family's reader");
    let said = |frames: &[Value], what: &str| {
        frames
            .iter()
            .any(|f| f["op"] == "event" && f["kind"] == "checkin" && f["data"]["message"] == what)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !said(&frames, "after") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the family never heard of the check-in after the outage: {frames:?}"
        );
        match family.next_within(Duration::from_secs(1)).await {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => {}
            Err(why) => panic!("the family's socket was lost: {why}"),
        }
    }
    let resynced = frames.iter().any(|f| f["op"] == "resync");
    println!(
        "family watcher: the check-in during the outage {}; resync: {resynced}",
        if said(&frames, "during") {
            "arrived as an event"
        } else {
            "did not arrive as an event"
        }
    );
    assert!(
        said(&frames, "during") || resynced,
        "the check-in during the outage was skipped silently: {frames:?}"
    );
    let found: Value = http
        .get(format!(
            "{base}/v1/incidents/{incident}/people?phone={phone}"
        ))
        .send()
        .await
        .expect("look-up")
        .json()
        .await
        .expect("people");
    let messages: Vec<&str> = found["people"][0]["checkins"]
        .as_array()
        .expect("check-ins")
        .iter()
        .filter_map(|c| c["message"].as_str())
        .collect();
    assert_eq!(messages, ["after", "during", "before"], "{found}");
    drop(instance);
}
