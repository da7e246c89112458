//! The transactional outbox: a change writes its live events here in the
//! transaction that writes its data ([`outbox!`]); the relay takes them in
//! order, publishes them and deletes them in the transaction that took them
//! ([`Store::relay_round`]). A crash between commit and publish only delays
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

/// One waiting row: a change's events of one shard, in order.
#[derive(Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub shard: i16,
    /// How many events it holds.
    pub n: i32,
    /// One event per line: channel TAB kind TAB data.
    pub events: String,
}

/// One event of a row.
pub struct Stored<'a> {
    pub channel: &'a str,
    pub kind: &'a str,
    /// JSON text, as it goes on the wire.
    pub data: &'a str,
}

impl OutboxRow {
    /// Its events, in the order they were written; a malformed line (never
    /// written by this code) is skipped, loudly, so it cannot block a shard.
    pub fn events(&self) -> impl Iterator<Item = Stored<'_>> {
        self.events.lines().filter_map(move |line| {
            let mut fields = line.splitn(3, '\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(channel), Some(kind), Some(data)) => Some(Stored {
                    channel,
                    kind,
                    data,
                }),
                _ => {
                    tracing::error!(id = self.id, "malformed outbox line; skipped");
                    None
                }
            }
        })
    }
}

/// The rows of `events`, ready to bind: per shard, in shard order, its
/// events' lines and how many. Serialised JSON has no raw tab or newline
/// (both are escaped in strings), and channel names and kinds have none.
pub(crate) fn rows(events: &[Addressed]) -> Vec<(i16, String, i32)> {
    let mut by_shard: Vec<(String, i32)> = vec![(String::new(), 0); SHARDS as usize];
    for a in events {
        let channel = a.channel.to_string();
        let (text, n) = &mut by_shard[shard_of(&channel) as usize];
        text.push_str(&channel);
        text.push('\t');
        text.push_str(a.event.kind());
        text.push('\t');
        text.push_str(&a.event.data());
        text.push('\n');
        *n += 1;
    }
    by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(shard, (text, n))| (shard as i16, text, n))
        .collect()
}

/// Writes `$events` (`&[Addressed]`) into the outbox on `$exec` — inside the
/// transaction of the change that caused them: one row per shard they touch,
/// in one statement. Evaluates to `Result<(), sqlx::Error>`.
macro_rules! outbox {
    ($exec:expr, $events:expr) => {{
        let rows = $crate::store::outbox::rows($events);
        if rows.is_empty() {
            Ok(())
        } else {
            let mut insert = sqlx::QueryBuilder::new("insert into outbox (shard, events, n) ");
            insert.push_values(&rows, |mut row, (shard, events, n)| {
                row.push_bind(*shard)
                    .push_bind(events.as_str())
                    .push_bind(*n);
            });
            insert.build().execute(&mut *$exec).await.map(|_| ())
        }
    }};
}
pub(crate) use outbox;

/// What one relay visit to a shard took and published.
#[derive(Clone, Copy, Debug, Default)]
pub struct Taken {
    pub rows: usize,
    pub events: usize,
}

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
    /// One relay round: up to `max` waiting rows of the shards this relay
    /// can take now, oldest first per shard, published through `sink` and
    /// deleted — one transaction, whatever the number of shards. On
    /// PostgreSQL a shard is taken with an advisory lock held until the
    /// commit, so no other relay publishes its rows twice or out of order;
    /// shards another relay holds are left to it.
    pub async fn relay_round<E: Send>(
        &self,
        max: i64,
        sink: &dyn Sink<Error = E>,
    ) -> Result<Taken, RelayError<E>> {
        let is_postgres = matches!(self, Store::Postgres(_));
        // The shards with rows waiting: one index probe each, however long
        // the backlog. (`column1` is what both backends call a VALUES
        // list's column.)
        let values: Vec<String> = (0..SHARDS).map(|s| format!("({s})")).collect();
        let waiting = format!(
            "select cast(column1 as bigint) as s from (values {}) as v \
             where exists (select 1 from outbox o where o.shard = v.column1)",
            values.join(", ")
        );
        let ours = if is_postgres {
            // Materialised first, so only shards with rows are locked.
            format!(
                "with waiting as materialized ({waiting}) \
                 select s from waiting where pg_try_advisory_xact_lock({LOCK_SPACE}, cast(s as integer)) \
                 order by s"
            )
        } else {
            waiting
        };
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
            }
            let shards: Vec<i64> = sqlx::QueryBuilder::new(ours.as_str())
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await?;
            if shards.is_empty() {
                return Ok(Taken::default());
            }
            let mut select =
                sqlx::QueryBuilder::new("select id, shard, n, events from outbox where shard in (");
            let mut list = select.separated(", ");
            for shard in &shards {
                list.push_bind(*shard as i16);
            }
            select.push(") order by shard, id limit ").push_bind(max);
            let rows: Vec<OutboxRow> = select.build_query_as().fetch_all(&mut *tx).await?;
            for row in &rows {
                sink.publish(row).await.map_err(RelayError::Publish)?;
            }
            // Exactly the rows taken: a row with a lower id may have been
            // committed meanwhile, and it has not gone out yet.
            let mut delete = sqlx::QueryBuilder::new("delete from outbox where shard in (");
            let mut list = delete.separated(", ");
            for shard in &shards {
                list.push_bind(*shard as i16);
            }
            delete.push(") and id in (");
            let mut ids = delete.separated(", ");
            for row in &rows {
                ids.push_bind(row.id);
            }
            delete.push(")");
            if !rows.is_empty() {
                delete.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Taken {
                rows: rows.len(),
                events: rows.iter().map(|r| r.n.max(0) as usize).sum(),
            })
        })
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

    /// Events waiting to be published (for operators and tests).
    pub async fn outbox_backlog(&self) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select cast(coalesce(sum(n), 0) as bigint) from outbox"
        )
        .fetch_one(pool)
        .await)
    }
}
