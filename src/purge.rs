//! Personal data does not outlive its use: once a closed incident's
//! `purge_at` has passed, its people, check-ins, watches and idempotency
//! records are deleted. Its counts are kept (`final_stats`) first.

use std::time::Duration;

use crate::geoindex::ShelterIndex;
use crate::store::Store;

/// How often the job looks for incidents due.
const EVERY: Duration = Duration::from_secs(60);

/// Purges every incident that is due; how many were.
pub async fn purge_due(store: &Store, index: &ShelterIndex) -> anyhow::Result<usize> {
    let due = store.incidents_due_for_purge(crate::store::now()).await?;
    for id in &due {
        let stats = crate::stats::of(store, index, id).await?;
        let deleted = store.purge_incident(id, &stats).await?;
        tracing::info!(incident = %id, deleted, "personal data of a closed incident deleted");
    }
    Ok(due.len())
}

/// Runs `purge_due` now and then every minute, for the life of the process.
pub fn start(store: Store, index: ShelterIndex) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = purge_due(&store, &index).await {
                tracing::error!(error = %e, "purge failed; retrying in a minute");
            }
        }
    });
}
