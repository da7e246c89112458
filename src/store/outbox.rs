//! The transactional outbox: a change writes its live events here in the
//! transaction that writes its data ([`outbox!`]); the relay takes them in
//! order, publishes them and deletes them in the transaction that took them
//! ([`Store::relay_shard`]). A crash between commit and publish only delays
//! an event; when the broker is away, events wait in the table, not in memory.

use futures_util::future::BoxFuture;

use super::{Store, on_backend};
use crate::events::Addressed;

/// Shards the outbox is spread over. One relay at a time holds a shard
/// (PostgreSQL advisory lock), so a channel's events — always in the same
/// shard — leave in the order they were written, while instances share the
/// shards between them.
pub const SHARDS: i16 = 8;

/// Advisory-lock namespace of the relay's shard locks ("anpi" in ASCII).
const LOCK_SPACE: i32 = 0x616e_7069;

/// The shard a channel's events are written to (FNV-1a: stable across
/// instances and versions, unlike the standard library's hasher).
pub fn shard_of(channel: &str) -> i16 {
    let hash = channel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % SHARDS as u64) as i16
}

/// One waiting event.
#[derive(Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    /// JSON text, as it goes on the wire.
    pub data: String,
}

/// The rows of `events`, ready to bind: (shard, channel, kind, data).
pub(crate) fn rows(events: &[Addressed]) -> Vec<(i16, String, &'static str, String)> {
    events
        .iter()
        .map(|a| {
            let channel = a.channel.to_string();
            (shard_of(&channel), channel, a.event.kind(), a.event.data())
        })
        .collect()
}

/// Rows per insert statement: 4 binds each stays far below both backends'
/// limits on bound parameters.
pub(crate) const ROWS_PER_INSERT: usize = 1000;

/// Writes `$events` (`&[Addressed]`) into the outbox on `$exec` — inside the
/// transaction of the change that caused them. Evaluates to
/// `Result<(), sqlx::Error>`.
macro_rules! outbox {
    ($exec:expr, $events:expr) => {{
        let rows = $crate::store::outbox::rows($events);
        let mut result = Ok(());
        for chunk in rows.chunks($crate::store::outbox::ROWS_PER_INSERT) {
            let mut insert =
                sqlx::QueryBuilder::new("insert into outbox (shard, channel, kind, data) ");
            insert.push_values(chunk, |mut row, (shard, channel, kind, data)| {
                row.push_bind(*shard)
                    .push_bind(channel.as_str())
                    .push_bind(*kind)
                    .push_bind(data.as_str());
            });
            if let Err(e) = insert.build().execute(&mut *$exec).await {
                result = Err(e);
                break;
            }
        }
        result
    }};
}
pub(crate) use outbox;

/// Where the relay sends what it takes (the broker).
pub trait Sink: Sync {
    type Error;
    fn publish<'a>(&'a self, row: &'a OutboxRow) -> BoxFuture<'a, Result<(), Self::Error>>;
}

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E> {
    #[error("outbox: {0}")]
    Store(#[from] sqlx::Error),
    /// The broker refused an event: nothing of the round was deleted, so
    /// what was published already goes out again next round (at least once).
    #[error("publish: {0}")]
    Publish(E),
}

impl Store {
    /// Publishes up to `max` waiting events of `shard`, oldest first, through
    /// `publish`, and deletes them once all went out. `None` when another
    /// relay holds the shard right now. The rows stay locked while they are
    /// published: no other relay publishes them twice.
    pub async fn relay_shard<E: Send>(
        &self,
        shard: i16,
        max: i64,
        sink: &dyn Sink<Error = E>,
    ) -> Result<Option<usize>, RelayError<E>> {
        let is_postgres = matches!(self, Store::Postgres(_));
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            if !is_postgres {
                // SQLite: take the write lock before reading, or the delete
                // below fails when another writer committed in between (a
                // read transaction cannot be upgraded) and the round would
                // publish its events a second time.
                sqlx::query("update outbox set shard = shard where id = 0")
                    .execute(&mut *tx)
                    .await?;
            } else {
                let ours: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1, $2)")
                    .bind(LOCK_SPACE)
                    .bind(i32::from(shard))
                    .fetch_one(&mut *tx)
                    .await?;
                if !ours {
                    return Ok(None);
                }
            }
            let rows: Vec<OutboxRow> = sqlx::query_as(
                "select id, channel, kind, data from outbox where shard = $1 order by id limit $2",
            )
            .bind(shard)
            .bind(max)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(Some(0));
            }
            for row in &rows {
                sink.publish(row).await.map_err(RelayError::Publish)?;
            }
            // Exactly the rows taken: a row with a lower id may have been
            // committed meanwhile, and it has not gone out yet.
            let mut delete = sqlx::QueryBuilder::new("delete from outbox where id in (");
            let mut ids = delete.separated(", ");
            for row in &rows {
                ids.push_bind(row.id);
            }
            delete.push(")");
            delete.build().execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(rows.len()))
        })
    }

    /// The shards that have events waiting: a relay round visits only these
    /// (each visit is a transaction, and most commits fill one or two).
    pub async fn outbox_shards(&self) -> Result<Vec<i16>, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select distinct shard from outbox order by shard"
        )
        .fetch_all(pool)
        .await)
    }

    /// The newest event written so far (0 when none).
    pub async fn outbox_head(&self) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select coalesce(max(id), 0) from outbox"
        )
        .fetch_one(pool)
        .await)
    }

    /// Events up to `head` still waiting.
    pub async fn outbox_waiting_up_to(&self, head: i64) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select count(*) from outbox where id <= $1"
        )
        .bind(head)
        .fetch_one(pool)
        .await)
    }

    /// Events waiting to be published (a metric, and for tests).
    pub async fn outbox_backlog(&self) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select count(*) from outbox"
        )
        .fetch_one(pool)
        .await)
    }
}
