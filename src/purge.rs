//! The purge job: personal data does not outlive its use. Every minute it
//! runs [`usecase::incidents::purge_due`](crate::usecase::incidents::purge_due):
//! closed incidents past `purge_at` lose their people, check-ins, watches and
//! idempotency records; their counts are kept.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::usecase::{Services, incidents};

/// How often the job looks for incidents due.
const EVERY: Duration = Duration::from_secs(60);

/// Purges what is due now and then every minute, until `stop`.
pub async fn run(services: Services, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = incidents::purge_due(&services).await {
            tracing::error!(error = %e, "purge failed; retrying in a minute");
        }
    }
}
