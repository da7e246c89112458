//! The outbox relay: one per instance. It publishes the events that changes
//! wrote into the outbox (`store::outbox`) through the broker, in order per
//! channel, and deletes them in the transaction that took them — so a
//! committed change always reaches the live channels, even after a crash,
//! and an event that cannot be published yet (Redis away) waits in the
//! table, not in this process's memory.
//!
//! It wakes when a change on this instance commits ([`Node::changed`]), on
//! PostgreSQL when any instance's change commits (`LISTEN anpi_outbox`, a
//! trigger NOTIFYs at commit), and otherwise polls — for writes made by a
//! CLI process on the same SQLite file, or a notification missed while the
//! listening connection was being re-made.
//!
//! [`Node::changed`]: super::Node::changed

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use super::broker::{Broker, BrokerError, event_tail};
use super::channel::Channel;
use crate::store::Store;
use crate::store::outbox::{OutboxRow, Sink};

/// Outbox rows taken per round (each a change's events of one shard: one
/// for a shelter update, up to a whole check-in batch's share): one
/// transaction, one delete.
const BATCH: i64 = 64;
/// With no wake-up, look anyway this often.
const POLL: Duration = Duration::from_millis(500);
/// The longest pause after a failed round (broker or database away).
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs until `shutdown`, then publishes what is still waiting (while the
/// broker takes it) and stops.
pub(super) async fn run(
    store: Store,
    broker: Arc<dyn Broker>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    if let Store::Postgres(pool) = &store {
        tokio::spawn(listen(pool.clone(), wake.clone(), shutdown.clone()));
    }
    let published = metrics::counter!("anpi_live_events_published_total");
    let failures = metrics::counter!("anpi_outbox_relay_failures_total");
    let mut backoff = Duration::from_millis(50);
    loop {
        let stopping = shutdown.is_cancelled();
        match round(&store, &broker).await {
            Ok((n, more)) => {
                published.increment(n as u64);
                backoff = Duration::from_millis(50);
                if stopping && !more {
                    return;
                }
                if more {
                    continue;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                failures.increment(1);
                tracing::warn!(error = %e, "outbox relay round failed; retrying");
                if stopping {
                    tracing::warn!(
                        "stopping with events still in the outbox; they go out at the next start"
                    );
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One round over the shards this relay can take: how many events went
/// out, and whether more were waiting than one round takes.
async fn round(store: &Store, broker: &Arc<dyn Broker>) -> anyhow::Result<(usize, bool)> {
    let taken = store
        .relay_round(BATCH, &BrokerSink(broker.clone()))
        .await?;
    Ok((taken.events, taken.rows as i64 == BATCH))
}

/// The broker, as the outbox's sink.
struct BrokerSink(Arc<dyn Broker>);

impl Sink for BrokerSink {
    type Error = BrokerError;

    fn publish<'a>(&'a self, row: &'a OutboxRow) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            for event in row.events() {
                let Ok(channel) = Channel::from_stored(event.channel) else {
                    // Never blocks the shard: an event nobody can publish is dropped, loudly.
                    tracing::error!(channel = %event.channel, id = row.id, "outbox event names no channel; dropped");
                    continue;
                };
                self.0
                    .publish(&channel, &event_tail(event.kind, event.data))
                    .await?;
            }
            Ok(())
        })
    }
}

/// PostgreSQL: wakes the relay whenever a transaction that wrote events
/// commits, on any instance.
async fn listen(pool: sqlx::PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen("anpi_outbox").await?;
            // Whatever was written while we were not listening.
            wake.notify_one();
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = listening => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "outbox listener lost; polling until it is back");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
