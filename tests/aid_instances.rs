//! Claims under contention across instances: 200 volunteers claim the same
//! 10 requests at once through three `anpi` processes on one PostgreSQL and
//! one Redis. No request is over-claimed, every refusal is a clear 409, the
//! live channels on every instance end in the committed state, and the
//! requesters' phone number is in no instance's log.

mod common;

use std::time::Duration;

use anpi::store::Store;
use common::procs::{Instance, Redis, coordinator_token};
use common::ws::Ws;
use common::{Backend, TestDb};
use futures_util::future::join_all;
use serde_json::{Value, json};

const NANAO: &str = "172022";
const REQUESTS: usize = 10;
const UNITS: i64 = 5;
const VOLUNTEERS: usize = 200;
const PHONE: &str = "0767-52-3141";
const PHONE_DIGITS: &str = "523141";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_volunteers_claim_ten_requests_across_three_instances() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = Redis::start();
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis.url()),
        // Everything the service logs, statements included: the contact
        // must be in none of it.
        ("RUST_LOG", "debug".to_owned()),
    ];
    let instances: Vec<Instance> = (0..3).map(|_| Instance::start(&env)).collect();
    let client = reqwest::Client::new();
    let centre = coordinator_token(&db.url, NANAO, "七尾市社会福祉協議会");

    // Volunteers registered through every instance.
    let volunteers: Vec<String> = join_all((0..VOLUNTEERS).map(|i| {
        let (client, centre) = (client.clone(), centre.clone());
        let base = instances[i % 3].base.clone();
        async move {
            let r = client
                .post(format!("{base}/v1/volunteers"))
                .bearer_auth(&centre)
                .json(&json!({"name": format!("volunteer {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    }))
    .await;

    // Ten residents ask for five units each.
    let mut ids = Vec::new();
    for i in 0..REQUESTS {
        let r = client
            .post(format!("{}/v1/aid/requests", instances[0].base))
            .json(&json!({"municipality": NANAO, "category": "water",
                          "lat": 37.04 + i as f64 * 0.001, "lon": 136.967,
                          "items": [{"name": "水 2L", "quantity": UNITS, "unit": "本"}],
                          "contact": {"phone": PHONE}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.unwrap()["request"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut watcher = Ws::connect(&instances[2].base).await;
    watcher
        .subscribe(json!({"channels": [format!("area:{NANAO}")]}))
        .await;
    watcher.expect("snapshot").await;

    // All at once: volunteer i claims one unit of request i % 10 through
    // instance i % 3 — twenty claimants per request, five units each.
    let outcomes: Vec<(u16, Value)> = join_all(volunteers.iter().enumerate().map(|(i, token)| {
        let client = client.clone();
        let url = format!(
            "{}/v1/aid/requests/{}/claims",
            instances[i % 3].base,
            ids[i % REQUESTS]
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"quantity": 1}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let accepted = outcomes.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(
        accepted,
        REQUESTS * UNITS as usize,
        "every unit claimed once"
    );
    for (status, body) in outcomes.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["type"], "urn:anpi:problem:conflict");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("only 0 units") || detail.contains("is claimed"),
            "{detail}"
        );
    }

    // The database agrees: no request has more live claims than units.
    let store = Store::connect(&db.url).await.unwrap();
    for id in &ids {
        let claims = store.claims_on(id).await.unwrap();
        let units: i32 = claims.iter().map(|c| c.quantity).sum();
        assert_eq!(i64::from(units), UNITS, "request {id}");
        let request = store.aid_request(id).await.unwrap().unwrap();
        assert_eq!(i64::from(request.claimed), UNITS);
        assert_eq!(request.status.as_str(), "claimed");
    }
    store.close().await;

    // Every instance's index and the live channel end in that state.
    for instance in &instances {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let list: Value = client
                .get(format!(
                    "{}/v1/aid/requests?near=37.04,136.967&status=open,partially_claimed",
                    instance.base
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if list["requests"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} still lists claimable requests: {list}",
                instance.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut last_status = std::collections::HashMap::new();
    while let Ok(Some(frame)) = watcher.next_within(Duration::from_millis(1500)).await {
        if frame["kind"] == "aid.request" {
            last_status.insert(
                frame["data"]["id"].as_str().unwrap().to_owned(),
                frame["data"]["status"].as_str().unwrap().to_owned(),
            );
        }
    }
    for id in &ids {
        assert_eq!(
            last_status.get(id).map(String::as_str),
            Some("claimed"),
            "{id}"
        );
    }

    // Each instance counts what its relay published and how claims went
    // (counters taken at start reach the exporter: they once did not).
    let mut published = 0.0;
    for instance in &instances {
        let text = common::metrics(&instance.base).await;
        published += text
            .lines()
            .filter(|l| l.starts_with("anpi_live_events_published_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        assert!(text.contains("anpi_aid_claims_total"), "{}", instance.base);
    }
    assert!(published > 0.0, "no instance counted a published event");

    // The phone number reached no log line of any instance.
    for mut instance in instances {
        let log = instance.stop();
        assert!(log.len() > 1000, "the instance logged at debug level");
        assert!(!log.contains(PHONE_DIGITS), "the contact leaked into a log");
    }
}
