//! Supply distribution points. Every change is one transaction with its
//! audit row and its live events (`events::supply_changed`).

use chrono::{DateTime, Utc};

use super::outbox::outbox;
use super::{Actor, Guarded, Store, audit, on_backend, to_json};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::domain::supply::{Queue, SupplyKind, SupplyPoint, SupplyStatus};
use crate::events;

#[derive(sqlx::FromRow)]
struct SupplyRow {
    id: String,
    municipality: String,
    kind: String,
    name: String,
    lat: f64,
    lon: f64,
    address: Option<String>,
    status: String,
    hours: String,
    stock: String,
    queue: String,
    wait_minutes: Option<i32>,
    note: Option<String>,
    posted_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: DateTime<Utc>,
    confirmed_by: String,
    version: i64,
}

macro_rules! supply_columns {
    () => {
        "id, municipality, kind, name, lat, lon, address, status, hours, stock, queue, \
         wait_minutes, note, posted_by, created_at, updated_at, confirmed_at, confirmed_by, version"
    };
}

impl TryFrom<SupplyRow> for SupplyPoint {
    type Error = anyhow::Error;
    fn try_from(r: SupplyRow) -> anyhow::Result<SupplyPoint> {
        let unknown = |what: &str, v: &str| anyhow::anyhow!("unknown supply {what} {v:?}");
        Ok(SupplyPoint {
            municipality: MunicipalityCode::parse(&r.municipality)?,
            kind: SupplyKind::parse(&r.kind).ok_or_else(|| unknown("kind", &r.kind))?,
            name: r.name,
            at: LatLon::new(r.lat, r.lon).map_err(anyhow::Error::msg)?,
            address: r.address,
            status: SupplyStatus::parse(&r.status).ok_or_else(|| unknown("status", &r.status))?,
            hours: serde_json::from_str(&r.hours)?,
            stock: serde_json::from_str(&r.stock)?,
            queue: Queue::parse(&r.queue).ok_or_else(|| unknown("queue", &r.queue))?,
            wait_minutes: r.wait_minutes,
            note: r.note,
            posted_by: r.posted_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            confirmed_by: r.confirmed_by,
            version: r.version,
            id: r.id,
        })
    }
}

/// Inserts a supply point on `$exec`.
macro_rules! insert_supply {
    ($exec:expr, $p:expr) => {
        sqlx::query(concat!(
            "insert into supply_point (",
            supply_columns!(),
            ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19)"
        ))
        .bind(&$p.id)
        .bind($p.municipality.as_str())
        .bind($p.kind.as_str())
        .bind(&$p.name)
        .bind($p.at.lat)
        .bind($p.at.lon)
        .bind(&$p.address)
        .bind($p.status.as_str())
        .bind(to_json(&$p.hours))
        .bind(to_json(&$p.stock))
        .bind($p.queue.as_str())
        .bind($p.wait_minutes)
        .bind(&$p.note)
        .bind(&$p.posted_by)
        .bind($p.created_at)
        .bind($p.updated_at)
        .bind($p.confirmed_at)
        .bind(&$p.confirmed_by)
        .bind($p.version)
        .execute($exec)
        .await
    };
}

/// Writes every mutable column of a supply point on `$exec`.
macro_rules! write_supply {
    ($exec:expr, $p:expr) => {
        sqlx::query(
            "update supply_point set kind = $2, name = $3, lat = $4, lon = $5, address = $6, \
             status = $7, hours = $8, stock = $9, queue = $10, wait_minutes = $11, note = $12, \
             updated_at = $13, confirmed_at = $14, confirmed_by = $15, version = $16 \
             where id = $1",
        )
        .bind(&$p.id)
        .bind($p.kind.as_str())
        .bind(&$p.name)
        .bind($p.at.lat)
        .bind($p.at.lon)
        .bind(&$p.address)
        .bind($p.status.as_str())
        .bind(to_json(&$p.hours))
        .bind(to_json(&$p.stock))
        .bind($p.queue.as_str())
        .bind($p.wait_minutes)
        .bind(&$p.note)
        .bind($p.updated_at)
        .bind($p.confirmed_at)
        .bind(&$p.confirmed_by)
        .bind($p.version)
        .execute($exec)
        .await
    };
}

/// Reads one supply point on `$exec`.
macro_rules! read_supply {
    ($exec:expr, $id:expr) => {{
        let row: Option<SupplyRow> = sqlx::query_as(concat!(
            "select ",
            supply_columns!(),
            " from supply_point where id = $1"
        ))
        .bind($id)
        .fetch_optional($exec)
        .await?;
        row
    }};
}

impl Store {
    /// Stores a new supply point.
    pub async fn insert_supply_point(
        &self,
        actor: &Actor,
        point: &SupplyPoint,
    ) -> Result<(), sqlx::Error> {
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_supply!(&mut *tx, point)?;
            audit!(
                &mut *tx,
                actor,
                point.created_at,
                "supply.post",
                &point.id,
                None::<&SupplyPoint>,
                Some(point)
            )?;
            outbox!(
                &mut *tx,
                &events::supply_changed(std::slice::from_ref(point))
            )?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes a supply point under a row lock: `change` sees the stored
    /// point and may refuse.
    pub async fn change_supply_point<E>(
        &self,
        actor: &Actor,
        id: &str,
        change: impl FnOnce(&mut SupplyPoint) -> Result<(), E>,
    ) -> Result<SupplyPoint, Guarded<E>> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query("update supply_point set version = version where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row = read_supply!(&mut *tx, id).ok_or(Guarded::NotFound)?;
            let before = SupplyPoint::try_from(row)?;
            let mut after = before.clone();
            change(&mut after).map_err(Guarded::Refused)?;
            after.updated_at = now;
            after.version = before.version + 1;
            write_supply!(&mut *tx, &after)?;
            audit!(
                &mut *tx,
                actor,
                now,
                "supply.change",
                id,
                Some(&before),
                Some(&after)
            )?;
            outbox!(
                &mut *tx,
                &events::supply_changed(std::slice::from_ref(&after))
            )?;
            tx.commit().await?;
            Ok::<_, Guarded<E>>(after)
        })
    }

    /// A municipality's list, all in one transaction: each point inserted,
    /// or, when its id is already stored in the same municipality, replaced
    /// (keeping when it was first posted). Returns how many were added, and
    /// every point as written.
    pub async fn import_supply_points(
        &self,
        actor: &Actor,
        points: &[SupplyPoint],
    ) -> Result<(usize, Vec<SupplyPoint>), super::StoreError> {
        let mut added = 0;
        let mut written = Vec::with_capacity(points.len());
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Write first, so that on SQLite the transaction holds the write
            // lock before it reads (a read transaction cannot be upgraded
            // once another writer committed).
            sqlx::query("update supply_point set version = version where id = ''")
                .execute(&mut *tx)
                .await?;
            for point in points {
                let before = read_supply!(&mut *tx, &point.id)
                    .map(SupplyPoint::try_from)
                    .transpose()?;
                let mut after = point.clone();
                match &before {
                    Some(b) => {
                        after.created_at = b.created_at;
                        after.version = b.version + 1;
                        write_supply!(&mut *tx, &after)?;
                    }
                    None => {
                        insert_supply!(&mut *tx, &after)?;
                        added += 1;
                    }
                }
                audit!(
                    &mut *tx,
                    actor,
                    after.updated_at,
                    "supply.import",
                    &after.id,
                    before.as_ref(),
                    Some(&after)
                )?;
                written.push(after);
            }
            outbox!(&mut *tx, &events::supply_changed(&written))?;
            tx.commit().await?;
            Ok::<_, super::StoreError>(())
        })?;
        Ok((added, written))
    }

    pub async fn supply_point(&self, id: &str) -> Result<Option<SupplyPoint>, super::StoreError> {
        let row = on_backend!(self, |pool| {
            Ok::<_, sqlx::Error>(read_supply!(pool, id))
        })?;
        Ok(row.map(SupplyPoint::try_from).transpose()?)
    }

    /// Every supply point, for the in-memory index.
    pub async fn all_supply_points(&self) -> Result<Vec<SupplyPoint>, super::StoreError> {
        let rows: Vec<SupplyRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!("select ", supply_columns!(), " from supply_point"))
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(SupplyPoint::try_from)
            .collect::<anyhow::Result<_>>()?)
    }
}
