//! One hot request, many volunteers claiming a unit of it at the same
//! moment, over HTTP against the real server: what is accepted, what is
//! refused, and whether the database ever holds more live claims than the
//! request's quantity.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use sqlx::PgPool;

/// What the claimants got.
pub struct Outcome {
    pub claimants: usize,
    pub quantity: i32,
    /// From the moment they were released to the last answer.
    pub elapsed: Duration,
    pub accepted: u64,
    pub refused: u64,
    /// Any other status, by status (must be empty).
    pub other: BTreeMap<u16, u64>,
    pub latency: Histogram<u64>,
    /// Registration of the volunteers (`POST /v1/volunteers`, 16 at once).
    pub registration: Duration,
    /// When each accepted claim was answered, from release, in order.
    pub acceptances: Vec<Duration>,
    /// The server's database connections waiting on a lock, sampled every
    /// 50 ms while the claims ran: (most at once, mean).
    pub lock_waiters: (i64, f64),
    /// Volunteers answered with something other than 201 whose claim the
    /// database holds anyway (told it failed, though it was made).
    pub stored_unacknowledged: usize,
    /// Volunteers answered 201 whose claim the database does not hold (must be 0).
    pub acknowledged_unstored: usize,
    /// Read back from the database afterwards.
    pub stored: Stored,
}

/// The hot request and its claims as the database holds them.
#[derive(Debug, PartialEq)]
pub struct Stored {
    pub quantity: i32,
    pub claimed: i32,
    pub status: String,
    /// Live (or delivered, received) claims: count and units.
    pub live_claims: i64,
    pub live_units: i64,
}

impl Stored {
    /// Units held beyond the quantity: must be 0.
    pub fn over_claim(&self) -> i64 {
        (self.live_units - i64::from(self.quantity)).max(0)
    }
}

pub async fn run(
    base: &str,
    pool: &PgPool,
    coordinator: &str,
    request_id: &str,
    claimants: usize,
) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(claimants + 16)
        .timeout(Duration::from_secs(120))
        .build()?;

    // The volunteers, registered by their coordinator through the API.
    let started = Instant::now();
    let volunteers: Vec<(i64, String)> = futures_util::stream::iter(0..claimants)
        .map(|i| {
            let client = client.clone();
            async move {
                let reply = client
                    .post(format!("{base}/v1/volunteers"))
                    .bearer_auth(coordinator)
                    .json(&serde_json::json!({ "name": format!("ボランティア {i}") }))
                    .send()
                    .await?;
                anyhow::ensure!(
                    reply.status() == 201,
                    "registering a volunteer: {}",
                    reply.status()
                );
                let body: serde_json::Value = reply.json().await?;
                Ok((
                    body["volunteer"]["id"].as_i64().context("a volunteer id")?,
                    body["token"]
                        .as_str()
                        .context("a volunteer token")?
                        .to_owned(),
                ))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let registration = started.elapsed();

    // One keep-alive connection per volunteer, open before the claims:
    // each signs in once (`GET /v1/me`), all at once.
    let warm: Vec<_> = volunteers
        .iter()
        .map(|(_, token)| {
            let (client, token) = (client.clone(), token.clone());
            let url = format!("{base}/v1/me");
            tokio::spawn(async move {
                let status = client.get(url).bearer_auth(token).send().await?.status();
                anyhow::ensure!(status == 200, "GET /v1/me: {status}");
                anyhow::Ok(())
            })
        })
        .collect();
    for w in warm {
        w.await??;
    }

    let go = Arc::new(tokio::sync::Barrier::new(claimants + 1));
    let url = format!("{base}/v1/aid/requests/{request_id}/claims");
    let tasks: Vec<_> = volunteers
        .iter()
        .map(|(id, token)| {
            let (id, token) = (*id, token.clone());
            let (client, url, go) = (client.clone(), url.clone(), go.clone());
            tokio::spawn(async move {
                go.wait().await;
                let sent = Instant::now();
                let reply = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "quantity": 1 }))
                    .send()
                    .await?;
                let status = reply.status().as_u16();
                reply.bytes().await?;
                anyhow::Ok((id, status, sent.elapsed(), Instant::now()))
            })
        })
        .collect();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn(lock_waiters(pool.clone(), sampling.clone()));
    go.wait().await;
    let released = Instant::now();
    let mut latency = super::histogram();
    let (mut accepted, mut refused) = (0, 0);
    let mut other = BTreeMap::new();
    let mut answered = Vec::with_capacity(claimants);
    let mut last = released;
    let mut acceptances = Vec::new();
    for t in tasks {
        let (id, status, took, at) = t.await??;
        answered.push((id, status));
        latency.record(took.as_nanos() as u64)?;
        last = last.max(at);
        match status {
            201 => {
                accepted += 1;
                acceptances.push(at - released);
            }
            409 => refused += 1,
            s => *other.entry(s).or_default() += 1,
        }
    }
    acceptances.sort_unstable();
    let elapsed = last - released;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let lock_waiters = sampler.await??;

    let (quantity, claimed, status): (i32, i32, String) =
        sqlx::query_as("select quantity, claimed, status from aid_request where id = $1")
            .bind(request_id)
            .fetch_one(pool)
            .await?;
    let (live_claims, live_units): (i64, i64) = sqlx::query_as(
        "select count(*), coalesce(sum(quantity), 0) from aid_claim \
         where request_id = $1 and status in ('live', 'delivered', 'received')",
    )
    .bind(request_id)
    .fetch_one(pool)
    .await?;
    let holders: HashSet<i64> = sqlx::query_scalar(
        "select account_id from aid_claim \
         where request_id = $1 and status in ('live', 'delivered', 'received')",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let stored_unacknowledged = answered
        .iter()
        .filter(|(id, status)| *status != 201 && holders.contains(id))
        .count();
    let acknowledged_unstored = answered
        .iter()
        .filter(|(id, status)| *status == 201 && !holders.contains(id))
        .count();
    Ok(Outcome {
        claimants,
        quantity,
        elapsed,
        accepted,
        refused,
        other,
        latency,
        registration,
        acceptances,
        lock_waiters,
        stored_unacknowledged,
        acknowledged_unstored,
        stored: Stored {
            quantity,
            claimed,
            status,
            live_claims,
            live_units,
        },
    })
}

/// Samples how many of the benchmark database's connections wait on a
/// lock until `running` is cleared: (most at once, mean).
async fn lock_waiters(
    pool: PgPool,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(i64, f64)> {
    let (mut most, mut sum, mut n) = (0i64, 0i64, 0u32);
    while running.load(std::sync::atomic::Ordering::Relaxed) {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await?;
        most = most.max(waiting);
        sum += waiting;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((most, sum as f64 / f64::from(n.max(1))))
}

/// When the given shares of the acceptances (answer times from release,
/// sorted) had been answered: (how many, when).
pub fn milestones(acceptances: &[Duration], shares: &[f64]) -> Vec<(usize, Duration)> {
    let n = acceptances.len();
    shares
        .iter()
        .filter_map(|share| {
            let k = ((share * n as f64).ceil() as usize).clamp(1, n.max(1));
            acceptances.get(k - 1).map(|&at| (k, at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_say_when_each_share_of_acceptances_was_answered() {
        let at: Vec<Duration> = (1..=500).map(|i| Duration::from_millis(10 * i)).collect();
        let m = milestones(&at, &[0.1, 0.5, 1.0]);
        assert_eq!(
            m,
            vec![
                (50, Duration::from_millis(500)),
                (250, Duration::from_millis(2_500)),
                (500, Duration::from_millis(5_000)),
            ]
        );
        assert!(milestones(&[], &[0.5]).is_empty());
        assert_eq!(
            milestones(&at[..3], &[0.1]),
            vec![(1, Duration::from_millis(10))]
        );
    }

    #[test]
    fn over_claim_is_what_live_claims_hold_beyond_the_quantity() {
        let stored = |live_units| Stored {
            quantity: 500,
            claimed: 500,
            status: "claimed".into(),
            live_claims: live_units,
            live_units,
        };
        assert_eq!(stored(500).over_claim(), 0);
        assert_eq!(stored(12).over_claim(), 0);
        assert_eq!(stored(503).over_claim(), 3);
    }
}
