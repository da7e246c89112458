//! The jobs the clock runs, on every instance (each change they make is a
//! guarded write, so two instances sweeping at once change a row once):
//!
//! - the purge: personal data does not outlive its use. Every minute it
//!   runs [`usecase::incidents::purge_due`](crate::usecase::incidents::purge_due):
//!   closed incidents past `purge_at` lose their people, check-ins, watches
//!   and idempotency records; their counts are kept;
//! - the aid clock: [`usecase::aid::sweep`](crate::usecase::aid::sweep)
//!   lapses claims not delivered in time, asks owners of stale records to
//!   reconfirm them and expires requests nobody reconfirmed.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::usecase::{Services, aid, incidents};

/// How often the purge looks for incidents due.
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

/// Sweeps aid now and then every `ANPI_AID_SWEEP_SECONDS`, until `stop`.
pub async fn aid_clock(services: Services, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(services.aid_rules.sweep_secs));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match aid::sweep(&services).await {
            Ok(swept) if swept == aid::Swept::default() => {}
            Ok(aid::Swept {
                lapsed,
                expired,
                reminded,
            }) => tracing::info!(lapsed, expired, reminded, "aid clock"),
            Err(e) => tracing::error!(error = %e, "aid sweep failed; retrying next tick"),
        }
    }
}
