//! Several `anpi` processes on one PostgreSQL and one Redis (or a Redis
//! Cluster): an update made through one instance reaches subscribers on the
//! others, in order, with the same sequence numbers; Redis killed and
//! restarted mid-stream leaves no client with a silent gap; a family waiting
//! on one instance hears a check-in made through another.

mod common;

use std::time::Duration;

use common::procs::{Instance, Redis, RedisCluster, token};
use common::ws::Ws;
use common::{Backend, TestDb};
use serde_json::{Value, json};

const AREA: &str = "area:172022";

/// Three instances on one fresh PostgreSQL database, with the broker given
/// by `broker_env`. The first loads the sample shelters before the others
/// start.
fn three_instances(db: &TestDb, broker_env: (&str, String)) -> Vec<Instance> {
    let env = [("DATABASE_URL", db.url.clone()), broker_env];
    // One after the other: the first fills the empty registry.
    (0..3).map(|_| Instance::start(&env)).collect()
}

async fn a_shelter(base: &str) -> String {
    let body: Value = reqwest::get(format!("{base}/v1/shelters?near=37.0432,136.9674&limit=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["shelters"][0]["id"].as_str().unwrap().to_owned()
}

async fn set_occupancy(base: &str, token: &str, id: &str, occupancy: i64) {
    let r = reqwest::Client::new()
        .patch(format!("{base}/v1/shelters/{id}"))
        .bearer_auth(token)
        .json(&json!({"occupancy": occupancy}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Follows one channel the way a careful client does and fails on any
/// silent gap: every event must follow the last one seen in the same epoch,
/// unless a `resync` and a fresh snapshot came first.
struct Follower {
    ws: Ws,
    epoch: String,
    last: u64,
    /// Occupancy of the watched shelter as the client knows it.
    occupancy: Option<i64>,
    shelter: String,
    /// (epoch, seq) of every event seen, to compare instances.
    seen: Vec<(String, u64)>,
    resyncs: usize,
}

impl Follower {
    async fn new(base: &str, shelter: &str) -> Follower {
        let mut ws = Ws::connect(base).await;
        let sub = ws.subscribe(json!({"channels": [AREA]})).await;
        let mut f = Follower {
            ws,
            epoch: String::new(),
            last: 0,
            occupancy: None,
            shelter: shelter.to_owned(),
            seen: Vec::new(),
            resyncs: 0,
        };
        assert_eq!(sub["channels"][0]["channel"], AREA);
        let snap = f.ws.expect("snapshot").await;
        f.take_snapshot(&snap);
        f
    }

    fn take_snapshot(&mut self, snap: &Value) {
        self.epoch = snap["epoch"].as_str().unwrap().to_owned();
        self.last = snap["seq"].as_u64().unwrap();
        self.occupancy = snap["data"]["shelters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == self.shelter.as_str())
            .and_then(|s| s["occupancy"].as_i64());
    }

    /// Reads one frame and checks it.
    async fn step(&mut self) {
        let frame = self.ws.next().await;
        match frame["op"].as_str().unwrap() {
            "event" => {
                let (epoch, seq) = (
                    frame["epoch"].as_str().unwrap(),
                    frame["seq"].as_u64().unwrap(),
                );
                assert!(
                    epoch == self.epoch && seq == self.last + 1,
                    "silent gap: after {}#{} came {epoch}#{seq}",
                    self.epoch,
                    self.last
                );
                self.last = seq;
                self.seen.push((epoch.to_owned(), seq));
                if frame["data"]["id"] == self.shelter.as_str() {
                    self.occupancy = frame["data"]["occupancy"].as_i64();
                }
            }
            "resync" => {
                self.resyncs += 1;
                let snap = self.ws.expect("snapshot").await;
                assert_eq!(snap["channel"], AREA);
                self.take_snapshot(&snap);
            }
            other => panic!("unexpected frame {other}: {frame}"),
        }
    }

    /// Reads until the shelter shows `occupancy`.
    async fn until(&mut self, occupancy: i64) {
        while self.occupancy != Some(occupancy) {
            self.step().await;
        }
    }
}

async fn updates_cross_instances_in_order(
    instances: &[Instance],
    db: &TestDb,
) -> (Follower, Follower) {
    let token = token(&db.url, "172022");
    let (a, b, c) = (&instances[0].base, &instances[1].base, &instances[2].base);
    let shelter = a_shelter(a).await;
    let mut on_b = Follower::new(b, &shelter).await;
    let mut on_c = Follower::new(c, &shelter).await;

    for occupancy in 1..=5 {
        set_occupancy(a, &token, &shelter, occupancy).await;
    }
    on_b.until(5).await;
    on_c.until(5).await;
    assert_eq!(on_b.seen.len(), 5);
    assert_eq!(on_b.seen, on_c.seen, "both instances see the same numbers");

    // Each instance's shelter index follows writes made elsewhere.
    let mut caught_up = false;
    for _ in 0..100 {
        let s: Value = reqwest::get(format!("{c}/v1/shelters/{shelter}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["occupancy"] == 5 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        caught_up,
        "instance C's index did not follow a write made on A"
    );

    // History is shared: leave B, miss two updates, come back on C with since.
    let since = json!({"seq": on_b.last, "epoch": on_b.epoch});
    drop(on_b);
    set_occupancy(a, &token, &shelter, 6).await;
    set_occupancy(a, &token, &shelter, 7).await;
    on_c.until(7).await;
    let mut back = Ws::connect(c).await;
    let sub = back
        .subscribe(json!({"channels": [AREA], "since": {AREA: since}}))
        .await;
    assert_eq!(sub["channels"][0]["recovered"], true, "{sub}");
    let e6 = back.expect("event").await;
    let e7 = back.expect("event").await;
    assert_eq!(
        (
            e6["data"]["occupancy"].as_i64(),
            e7["data"]["occupancy"].as_i64()
        ),
        (Some(6), Some(7))
    );
    assert_eq!(e7["seq"].as_u64(), Some(on_c.last));

    let on_b = Follower::new(b, &shelter).await;
    (on_b, on_c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_and_redis_killed_mid_stream() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut redis = Redis::start();
    let instances = three_instances(&db, ("REDIS_URL", redis.url()));
    let (mut on_b, mut on_c) = updates_cross_instances_in_order(&instances, &db).await;
    let token = token(&db.url, "172022");
    let a = &instances[0].base;
    let shelter = on_b.shelter.clone();

    // Redis dies with everything it held; offices keep posting meanwhile.
    redis.kill();
    set_occupancy(a, &token, &shelter, 20).await;
    set_occupancy(a, &token, &shelter, 21).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    set_occupancy(a, &token, &shelter, 22).await;

    // Everyone ends at the latest state, and the followers would have failed
    // on any event that skipped one.
    on_b.until(22).await;
    on_c.until(22).await;
    assert!(
        on_b.resyncs >= 1,
        "a new Redis is a new epoch: a resync is due"
    );

    // And live again afterwards, in order.
    set_occupancy(a, &token, &shelter, 23).await;
    on_b.until(23).await;
    on_c.until(23).await;
    let fresh = Follower::new(&instances[2].base, &shelter).await;
    assert_eq!(fresh.occupancy, Some(23));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_redis_cluster_with_sharded_pubsub() {
    let db = TestDb::new(Backend::Postgres).await;
    let cluster = RedisCluster::start();
    let instances = three_instances(&db, ("ANPI_REDIS_CLUSTER", cluster.addrs()));
    let (mut on_b, mut on_c) = updates_cross_instances_in_order(&instances, &db).await;
    let token = token(&db.url, "172022");
    set_occupancy(&instances[1].base, &token, &on_b.shelter.clone(), 40).await;
    on_b.until(40).await;
    on_c.until(40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_on_one_instance_hears_a_check_in_made_on_another() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = Redis::start();
    let env = [("DATABASE_URL", db.url.clone()), ("REDIS_URL", redis.url())];
    let (a, b) = (Instance::start(&env), Instance::start(&env));
    let office = token(&db.url, "172022");
    let http = reqwest::Client::new();
    let incident: Value = http
        .post(format!("{}/v1/incidents", a.base))
        .bearer_auth(&office)
        .json(&json!({"name": "地震", "hazard": "earthquake", "municipalities": ["172022"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incident = incident["id"].as_str().unwrap();

    // The family looks her up on B before she has checked in, and waits there.
    let found: Value = http
        .get(format!(
            "{}/v1/incidents/{incident}/people?phone=0767-52-0000",
            b.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["people"], json!([]));
    let watch = found["watch_token"].as_str().unwrap();
    let mut family = Ws::connect(&b.base).await;
    family
        .subscribe(json!({"channels": [format!("person:{watch}")]}))
        .await;
    family.expect("snapshot").await;

    // She checks in through A.
    let r = http
        .post(format!("{}/v1/incidents/{incident}/checkins", a.base))
        .json(&json!({"phone": "０７６７５２００００", "name": "高橋 恵子", "statuses": ["safe", "at_home"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let receipt: Value = r.json().await.unwrap();
    let event = family.expect("event").await;
    assert_eq!(event["kind"], "checkin");
    assert_eq!(event["data"]["name"], "高橋 恵子");
    assert_eq!(event["data"]["statuses"], json!(["safe", "at_home"]));
    assert_eq!(event["data"]["person_token"], receipt["person_token"]);
}
