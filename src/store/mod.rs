//! Persistence: one `Store` type with SQLite (embedded default) and
//! PostgreSQL (production) behind it, chosen by the URL scheme.
//!
//! Both backends run the same SQL text (`$n` placeholders, `on conflict … do
//! update` and `returning` work on both); `on_backend!` expands one body for
//! each pool type so a query is written once. Migrations live in
//! `migrations/sqlite` and `migrations/postgres` and run at start.

mod aid;
mod announcements;
mod checkins;
mod incidents;
mod officials;
pub mod outbox;
mod pfif;
mod shelters;
mod supply;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use aid::{
    AidOffer, AidRequest, Claim, ClaimRefusal, Claimed, CloseRefusal, NewClaim, OfferStatus,
    RecordKind, Throttle,
};
pub use announcements::{Announcement, NewAnnouncement, Severity};
pub use checkins::{
    CheckinRequest, CheckinView, Committed, HouseholdReceipt, LatestCheckin, LookUp, PersonReport,
    PersonView, Receipt, StoredPerson,
};
pub use incidents::{Incident, NewIncident};
pub use officials::{Account, NewAccount, Official, Role};
pub use pfif::{ImportCounts, StoredNote, StoredRecord};
pub use shelters::{AuditEvent, ImportOutcome, SnapshotOutcome};

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored row could not be read back as a domain value.
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<sqlx::Error>() {
            Ok(db) => StoreError::Database(db),
            Err(other) => StoreError::Corrupt(format!("{other:#}")),
        }
    }
}

impl StoreError {
    /// The database could not be reached or gave no connection in time: a
    /// retry later may succeed (the change was not made).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        ) || matches!(self, StoreError::Database(sqlx::Error::Database(db))
            // PostgreSQL shutting down, or not yet accepting connections.
            if db.code().is_some_and(|c| c.starts_with("57P") || c == "08006"))
    }
}

/// The outcome of a write that first checks the row it changes.
#[derive(Debug)]
pub enum Guarded<E> {
    /// No such row.
    NotFound,
    /// The caller's check refused the change (its reason).
    Refused(E),
    Store(StoreError),
}

impl<E> From<sqlx::Error> for Guarded<E> {
    fn from(e: sqlx::Error) -> Self {
        Guarded::Store(e.into())
    }
}

impl<E> From<anyhow::Error> for Guarded<E> {
    fn from(e: anyhow::Error) -> Self {
        Guarded::Store(e.into())
    }
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds.
macro_rules! on_backend {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Appends to the audit trail on `$exec`; `$before`/`$after` are `Option<&T: Serialize>`.
macro_rules! audit {
    ($exec:expr, $actor:expr, $now:expr, $action:expr, $target:expr, $before:expr, $after:expr $(,)?) => {
        sqlx::query(
            "insert into audit_event (at, actor, action, target, before, after) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind($now)
        .bind($actor.audit_name())
        .bind($action)
        .bind($target)
        .bind($before.map($crate::store::to_json))
        .bind($after.map($crate::store::to_json))
        .execute($exec)
        .await
    };
}
pub(crate) use audit;

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("audit values serialise")
}

/// The current time at the precision both backends keep (PostgreSQL stores
/// microseconds), so what a write answers is exactly what a read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    truncate(chrono::Utc::now())
}

/// `t` as the database keeps it (microseconds).
pub fn truncate(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// A cheap, cloneable handle to the database.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Who is changing something, for the audit trail and `updated_by`.
#[derive(Clone, Debug)]
pub enum Actor {
    Official(Official),
    /// A coordinator or volunteer (or an office acting on aid).
    Member(Account),
    /// A resident with a request's edit link, or without an account at all.
    Resident,
    /// Someone with shell access to the server (CLI import, sample seeding).
    Operator(&'static str),
}

impl Actor {
    /// The name shown to residents next to a status (`updated_by`).
    pub fn display_name(&self) -> String {
        match self {
            Actor::Official(o) => o.name.clone(),
            Actor::Member(a) => a.display_name(),
            Actor::Resident => "resident".to_owned(),
            Actor::Operator(what) => (*what).to_owned(),
        }
    }

    /// The audit trail's identification: stable id plus name.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Official(o) => format!("official:{} {}", o.id, o.name),
            Actor::Member(a) => format!("{}:{} {}", a.role.as_str(), a.id, a.name),
            Actor::Resident => "resident".to_owned(),
            Actor::Operator(what) => format!("operator:{what}"),
        }
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://FILE` or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before anyone is told it happened.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            sqlx::migrate!("migrations/sqlite")
                .run(&pool)
                .await
                .context("migrating the SQLite database")?;
            Store::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Plan each execution for the tables as they are now: a plan
            // cached while an incident's tables were empty (a hash join
            // over a full scan) would stay in use as they fill in a surge.
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .context("parsing the PostgreSQL URL")?
                .options([("plan_cache_mode", "force_custom_plan")]);
            // No ping before each use: it is a round trip per query, and a
            // connection found dead fails its query with an error (nothing
            // is acknowledged that was not stored); the pool replaces it.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .context("migrating the PostgreSQL database")?;
            Store::Postgres(pool)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        Ok(store)
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// For readiness checks: can we run a query now?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_backend!(self, |pool| sqlx::query("select 1")
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// The key for keyed hashes: the one in the database, made on first use.
    /// Several instances starting at once agree because only the first insert wins.
    pub async fn secret_key(&self) -> Result<Vec<u8>, sqlx::Error> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        on_backend!(self, |pool| {
            sqlx::query(
                "insert into server_secret (id, key) values (1, $1) on conflict (id) do nothing",
            )
            .bind(fresh.to_vec())
            .execute(pool)
            .await?;
            sqlx::query_scalar("select key from server_secret where id = 1")
                .fetch_one(pool)
                .await
        })
    }

    pub async fn close(&self) {
        on_backend!(self, |pool| pool.close().await)
    }
}
