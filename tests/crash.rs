//! The service is SIGKILLed in the middle of a check-in flood: after a
//! restart every check-in that got a 201 is in the database (and so no 201
//! was given for one that is not), and retrying the unanswered ones under
//! their keys stores each exactly once.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anpi::store::Store;
use common::procs::{self, Instance};
use common::{Backend, TestDb};
use serde_json::{Value, json};

on_both_backends!(killed_mid_flood_every_acknowledged_check_in_is_stored);

const CLIENTS: usize = 16;

fn body(client: usize, i: usize) -> Value {
    json!({
        "phone": format!("090{:08}", client * 1_000_000 + i),
        "name": format!("Flood {client}-{i}"),
        "statuses": ["safe"],
    })
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    incident: &str,
    key: &str,
    body: &Value,
) -> Option<Value> {
    let r = client
        .post(format!("{base}/v1/incidents/{incident}/checkins"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .ok()?;
    if r.status() == 201 {
        r.json().await.ok()
    } else {
        None
    }
}

async fn killed_mid_flood_every_acknowledged_check_in_is_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    // One address floods here; the per-address limit is not what is tested.
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("ANPI_CHECKIN_PER_ADDRESS", "1000000".to_owned()),
    ];
    let instance = Instance::start(&env);
    let token = procs::token(&db.url, "172022");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let incident: Value = http
        .post(format!("{}/v1/incidents", instance.base))
        .bearer_auth(&token)
        .json(&json!({"name": "flood", "hazard": "earthquake", "municipalities": ["172022"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incident = incident["id"].as_str().unwrap().to_owned();

    // (key, client, i) answered 201 with this check-in id; and the ones sent
    // but not answered.
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, usize, usize, String)>::new()));
    let unanswered = Arc::new(Mutex::new(Vec::<(String, usize, usize)>::new()));
    let mut flood = Vec::new();
    for client in 0..CLIENTS {
        let (http, base, incident) = (http.clone(), instance.base.clone(), incident.clone());
        let (acknowledged, unanswered) = (acknowledged.clone(), unanswered.clone());
        flood.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("{client}-{i}");
                match post(&http, &base, &incident, &key, &body(client, i)).await {
                    Some(receipt) => acknowledged.lock().unwrap().push((
                        key,
                        client,
                        i,
                        receipt["checkin_id"].as_str().unwrap().to_owned(),
                    )),
                    None => {
                        unanswered.lock().unwrap().push((key, client, i));
                        return; // the service is gone
                    }
                }
            }
        }));
    }
    // Kill it once the flood is well under way.
    for _ in 0..600 {
        if acknowledged.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(instance); // SIGKILL
    for task in flood {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let unanswered = unanswered.lock().unwrap().clone();
    assert!(acknowledged.len() >= 300, "the flood got going");
    assert_eq!(
        unanswered.len(),
        CLIENTS,
        "each client's last request went unanswered"
    );

    let store = Store::connect(&db.url).await.unwrap();
    let stored: HashSet<String> = store
        .checkin_ids(&incident)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for (key, _, _, id) in &acknowledged {
        assert!(
            stored.contains(id),
            "check-in {key} was acknowledged but is not stored"
        );
    }
    assert!(stored.len() <= acknowledged.len() + unanswered.len());
    store.close().await;

    // After a restart, retrying the unanswered under their keys stores each once.
    let instance = Instance::start(&env);
    for (key, client, i) in &unanswered {
        let receipt = post(&http, &instance.base, &incident, key, &body(*client, *i)).await;
        assert!(receipt.is_some(), "retry of {key} answered");
    }
    for (key, client, i, id) in acknowledged.iter().take(20) {
        let receipt = post(&http, &instance.base, &incident, key, &body(*client, *i))
            .await
            .unwrap();
        assert_eq!(
            receipt["checkin_id"],
            id.as_str(),
            "a retry of {key} gets its first answer"
        );
    }
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store.checkin_count(&incident).await.unwrap() as usize,
        acknowledged.len() + unanswered.len(),
        "every check-in stored exactly once"
    );
    store.close().await;
    drop(instance);
}
