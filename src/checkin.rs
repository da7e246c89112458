//! The surge write path for check-ins: requests wait in a bounded queue; one
//! writer takes as many as are waiting (up to a batch), commits them in one
//! transaction — one fsync for the lot — and only then answers each and
//! publishes to the people watching. A full queue is answered at once with
//! 503: load is shed, and nothing is acknowledged that was not stored.
//! The incident's counts follow on `incident:<id>`, at most once a second.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::events;
use crate::geoindex::ShelterIndex;
use crate::live::Node;
use crate::store::{CheckinRequest, Committed, Store};

/// Counts go out at most this often per incident, however many check in.
const STATS_EVERY: Duration = Duration::from_secs(1);

struct Job {
    request: CheckinRequest,
    answer: oneshot::Sender<Result<Committed, WriteFailed>>,
}

/// The check-in could not be stored; nothing of it was.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the check-in could not be stored: {reason}")]
pub struct WriteFailed {
    reason: String,
    /// The database refused this check-in's own content: retrying it will
    /// not help (otherwise the database was away or overloaded).
    pub refused: bool,
}

impl WriteFailed {
    fn new(reason: impl Into<String>, refused: bool) -> Self {
        WriteFailed {
            reason: reason.into(),
            refused,
        }
    }
}

/// Why a check-in was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("too many check-ins are waiting to be stored")]
    Busy,
    #[error(transparent)]
    Failed(#[from] WriteFailed),
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct CheckinWriter {
    queue: mpsc::Sender<Job>,
    /// Incidents whose counts changed (check-ins, or the incident closed).
    changed: mpsc::UnboundedSender<String>,
}

impl CheckinWriter {
    /// Starts the writer with room for `capacity` waiting check-ins, storing
    /// at most `batch` per transaction. It stops once every handle is gone
    /// and the queue is drained.
    pub fn start(
        store: Store,
        index: ShelterIndex,
        live: Node,
        capacity: usize,
        batch: usize,
        writers: usize,
    ) -> Self {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let (changed, changes) = mpsc::unbounded_channel();
        let writer = write_batches(
            store.clone(),
            live.clone(),
            rx,
            changed.clone(),
            batch.max(1),
            // SQLite writes one transaction at a time whatever we do.
            match store {
                Store::Sqlite(_) => 1,
                Store::Postgres(_) => writers.max(1),
            },
        );
        tokio::spawn(writer);
        tokio::spawn(publish_stats(store, index, live, changes));
        CheckinWriter { queue, changed }
    }

    /// An incident opened or closed: its counts, and the shelters' arrivals,
    /// are to be worked out again.
    pub fn incident_changed(&self, id: &str) {
        let _ = self.changed.send(id.to_owned());
    }

    /// Stores one check-in; answers once its batch is committed.
    pub async fn submit(&self, request: CheckinRequest) -> Result<Committed, SubmitError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .try_send(Job { request, answer })
            .map_err(|_| SubmitError::Busy)?;
        let waiting = self.queue.max_capacity() - self.queue.capacity();
        metrics::gauge!("anpi_checkin_queue").set(waiting as f64);
        match answered.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(WriteFailed::new("the writer stopped", false).into()),
        }
    }
}

/// Takes batches off the queue as writers come free: up to `writers`
/// transactions at once, each of up to `max_batch` check-ins. While all are
/// busy, the next batch grows.
async fn write_batches(
    store: Store,
    live: Node,
    mut rx: mpsc::Receiver<Job>,
    changed: mpsc::UnboundedSender<String>,
    max_batch: usize,
    writers: usize,
) {
    let writers = Arc::new(Semaphore::new(writers));
    loop {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut jobs = Vec::with_capacity(max_batch);
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            return;
        }
        let (store, live, changed) = (store.clone(), live.clone(), changed.clone());
        tokio::spawn(async move {
            write_batch(&store, &live, &changed, jobs).await;
            drop(writer);
        });
    }
}

/// Stores one batch, answers each of its requests, then publishes.
async fn write_batch(
    store: &Store,
    live: &Node,
    changed: &mpsc::UnboundedSender<String>,
    jobs: Vec<Job>,
) {
    let (requests, answers): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| (j.request, j.answer)).unzip();
    metrics::histogram!("anpi_checkin_batch_size").record(requests.len() as f64);
    let outcomes = commit_apart(store, &requests).await;
    let mut stored = false;
    for ((request, answer), outcome) in requests.iter().zip(answers).zip(outcomes) {
        if let Ok(Committed::New { people, .. }) = &outcome {
            metrics::counter!("anpi_checkins_stored_total").increment(people.len() as u64);
            let _ = changed.send(request.incident_id.clone());
            stored = true;
        }
        let _ = answer.send(outcome);
    }
    if stored {
        // Their events are in the outbox, committed with them.
        live.changed([]);
    }
}

/// Commits `requests`, one outcome each. When the database refuses a batch
/// because of what is in it (a value it cannot store, a constraint), the
/// batch is split in halves and each retried, so one bad row fails only
/// itself and never the other people's check-ins written with it. When the
/// database cannot be reached, nothing is retried here: every request of the
/// batch is answered 503 and its client retries.
async fn commit_apart(
    store: &Store,
    requests: &[CheckinRequest],
) -> Vec<Result<Committed, WriteFailed>> {
    let mut outcomes: Vec<Option<Result<Committed, WriteFailed>>> =
        requests.iter().map(|_| None).collect();
    let mut pending = Vec::with_capacity(8);
    pending.push(0..requests.len());
    while let Some(range) = pending.pop() {
        match store.commit_checkins(&requests[range.clone()]).await {
            Ok(committed) => {
                for (i, c) in range.zip(committed) {
                    outcomes[i] = Some(Ok(c));
                }
            }
            Err(e) if range.len() > 1 && refused_for_content(&e) => {
                metrics::counter!("anpi_checkin_batches_split_total").increment(1);
                let mid = range.start + range.len() / 2;
                // Second half pushed first: the first half is tried first.
                pending.push(mid..range.end);
                pending.push(range.start..mid);
            }
            Err(e) => {
                tracing::error!(error = %e, batch = range.len(), "check-ins not stored");
                let refused = refused_for_content(&e);
                if !refused {
                    // A moment for a database that is restarting; the clients retry.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                for i in range {
                    outcomes[i] = Some(Err(WriteFailed::new(e.to_string(), refused)));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every request has an outcome"))
        .collect()
}

/// The database refused the statement because of the data in it (PostgreSQL
/// SQLSTATE class 22 "data exception", or a constraint), rather than being
/// unreachable or overloaded: retrying the same rows would fail the same way.
fn refused_for_content(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    !matches!(db.kind(), sqlx::error::ErrorKind::Other)
        || db.code().is_some_and(|code| code.starts_with("22"))
}

/// Publishes `incident.stats` for the incidents that had check-ins since the
/// last round, at most once per `STATS_EVERY`, and brings each shelter's
/// self-reported arrivals (over all open incidents) up to date.
async fn publish_stats(
    store: Store,
    index: ShelterIndex,
    live: Node,
    mut changes: mpsc::UnboundedReceiver<String>,
) {
    let mut dirty = BTreeSet::new();
    let mut next_round = tokio::time::Instant::now();
    loop {
        tokio::select! {
            id = changes.recv() => match id {
                Some(id) => { dirty.insert(id); }
                None => return,
            },
            _ = tokio::time::sleep_until(next_round), if !dirty.is_empty() => {
                let started = tokio::time::Instant::now();
                if let Err(e) = count_round(&store, &index, &live, std::mem::take(&mut dirty)).await {
                    tracing::warn!(error = %e, "counts not published");
                }
                // A round reads every check-in of the open incidents. In a
                // surge that grows, so rounds space out to ten times their
                // cost: the counts never crowd out the check-ins themselves.
                next_round = started + STATS_EVERY.max(started.elapsed() * 10);
            }
        }
    }
}

/// One round: the counts of every open incident (published for the
/// `dirty` ones, and for dirty ones just closed) and, from them, each
/// shelter's self-reported arrivals; changed shelters are published like
/// any update.
async fn count_round(
    store: &Store,
    index: &ShelterIndex,
    live: &Node,
    mut dirty: BTreeSet<String>,
) -> anyhow::Result<()> {
    let mut arrivals = std::collections::BTreeMap::new();
    let mut counted = Vec::new();
    for incident in store.incidents(Some(true), None).await? {
        let stats = crate::stats::of(store, index, &incident.id).await?;
        for (shelter, n) in &stats.by_shelter {
            *arrivals.entry(shelter.clone()).or_default() += n;
        }
        if dirty.remove(&incident.id) {
            counted.push(events::stats(&incident.id, stats));
        }
    }
    for id in dirty {
        let stats = crate::stats::of(store, index, &id).await?;
        counted.push(events::stats(&id, stats));
    }
    // The counts and the arrivals they imply go out together.
    let changed = store.set_self_reported(&arrivals, &counted).await?;
    live.changed(changed);
    Ok(())
}
