//! Shelters: registry upserts, status snapshots, live updates, each change
//! audited in the same transaction that makes it.
//!
//! Every write transaction starts with a write that touches the rows it is
//! about to read ("update … set x = x"): on PostgreSQL that takes their row
//! locks, on SQLite it takes the database write lock before anything is read,
//! so a read-modify-write never races another writer on either backend.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::outbox::outbox;
use super::{Actor, Guarded, Store, StoreError, audit, on_backend, to_json};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{
    Capacity, HazardSet, LatLon, LiveState, LiveUpdate, Shelter, ShelterKind, ShelterNeed,
    ShelterSite, ShelterStatus,
};
use crate::events;

/// The columns of `ShelterRow`, in one place.
macro_rules! select_shelter {
    ($rest:literal) => {
        concat!(
            "select id, municipality, name, name_kana, name_en, address, lat, lon, elevation_m, phone, ",
            "hazards, kind, capacity_indoor, capacity_outdoor, capacity_text, served_area, ",
            "status, occupancy, needs, needs_note, updated_at, updated_by, as_of, self_reported ",
            "from shelter ",
            $rest
        )
    };
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `official:<id> <name>` or `operator:<what>`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON of the state before (absent for a new shelter).
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ShelterRow {
    id: String,
    municipality: String,
    name: String,
    name_kana: Option<String>,
    name_en: Option<String>,
    address: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    elevation_m: Option<f64>,
    phone: Option<String>,
    hazards: i64,
    kind: String,
    capacity_indoor: Option<i64>,
    capacity_outdoor: Option<i64>,
    capacity_text: Option<String>,
    served_area: Option<String>,
    status: String,
    occupancy: i64,
    needs: String,
    needs_note: Option<String>,
    updated_at: Option<DateTime<Utc>>,
    updated_by: Option<String>,
    as_of: Option<DateTime<Utc>>,
    self_reported: i64,
}

impl TryFrom<ShelterRow> for Shelter {
    type Error = anyhow::Error;

    fn try_from(r: ShelterRow) -> anyhow::Result<Self> {
        let location = match (r.lat, r.lon) {
            (Some(lat), Some(lon)) => Some(LatLon { lat, lon }),
            _ => None,
        };
        let (needs, needs_note) = needs_from_stored(serde_json::from_str(&r.needs)?, r.needs_note);
        Ok(Shelter {
            site: ShelterSite {
                municipality: MunicipalityCode::parse(&r.municipality)?,
                id: r.id,
                name: r.name,
                name_kana: r.name_kana,
                name_en: r.name_en,
                address: r.address,
                location,
                elevation_m: r.elevation_m,
                phone: r.phone,
                hazards: HazardSet::from_bits(r.hazards),
                kind: ShelterKind::parse(&r.kind)
                    .ok_or_else(|| anyhow::anyhow!("unknown shelter kind {:?}", r.kind))?,
                capacity: Capacity {
                    indoor: r.capacity_indoor,
                    outdoor: r.capacity_outdoor,
                    text: r.capacity_text,
                },
                served_area: r.served_area,
            },
            live: LiveState {
                status: ShelterStatus::parse(&r.status)
                    .ok_or_else(|| anyhow::anyhow!("unknown shelter status {:?}", r.status))?,
                occupancy: r.occupancy,
                needs,
                needs_note,
                updated_at: r.updated_at,
                updated_by: r.updated_by,
                as_of: r.as_of,
                self_reported: r.self_reported,
            },
        })
    }
}

/// Needs written before the fixed list were free text: what is not a code
/// is kept, in the note, so nothing an office wrote is lost.
fn needs_from_stored(
    stored: Vec<String>,
    note: Option<String>,
) -> (Vec<ShelterNeed>, Option<String>) {
    let (mut needs, mut words) = (Vec::new(), Vec::new());
    for item in stored {
        match ShelterNeed::parse(&item) {
            Some(need) => needs.push(need),
            None => words.push(item),
        }
    }
    let note = match (note, words.is_empty()) {
        (note, true) => note,
        (None, false) => Some(words.join("、")),
        (Some(note), false) => Some(format!("{note} {}", words.join("、"))),
    };
    (needs, note)
}

fn to_shelters(rows: Vec<ShelterRow>) -> anyhow::Result<Vec<Shelter>> {
    rows.into_iter().map(Shelter::try_from).collect()
}

/// Inserts a whole shelter, registry and live state, on `$exec` (a site first
/// seen in a snapshot). Macros rather than functions so one text serves both
/// backends' executor types.
macro_rules! insert_shelter {
    ($exec:expr, $s:expr, $now:expr) => {{
        let s: &Shelter = $s;
        sqlx::query(
            "insert into shelter (id, municipality, name, name_kana, name_en, address, lat, lon, \
             elevation_m, phone, hazards, kind, capacity_indoor, capacity_outdoor, capacity_text, \
             served_area, status, occupancy, needs, needs_note, updated_at, updated_by, as_of, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24)",
        )
        .bind(&s.site.id)
        .bind(s.site.municipality.as_str())
        .bind(&s.site.name)
        .bind(&s.site.name_kana)
        .bind(&s.site.name_en)
        .bind(&s.site.address)
        .bind(s.site.location.map(|l| l.lat))
        .bind(s.site.location.map(|l| l.lon))
        .bind(s.site.elevation_m)
        .bind(&s.site.phone)
        .bind(s.site.hazards.bits())
        .bind(s.site.kind.name())
        .bind(s.site.capacity.indoor)
        .bind(s.site.capacity.outdoor)
        .bind(&s.site.capacity.text)
        .bind(&s.site.served_area)
        .bind(s.live.status.name())
        .bind(s.live.occupancy)
        .bind(to_json(&s.live.needs))
        .bind(&s.live.needs_note)
        .bind(s.live.updated_at)
        .bind(&s.live.updated_by)
        .bind(s.live.as_of)
        .bind($now)
        .execute($exec)
        .await
    }};
}

/// Writes a shelter's live state on `$exec`.
macro_rules! write_live {
    ($exec:expr, $s:expr) => {{
        let s: &Shelter = $s;
        sqlx::query(
            "update shelter set status = $1, occupancy = $2, needs = $3, needs_note = $4, \
             updated_at = $5, updated_by = $6, as_of = $7 where id = $8",
        )
        .bind(s.live.status.name())
        .bind(s.live.occupancy)
        .bind(to_json(&s.live.needs))
        .bind(&s.live.needs_note)
        .bind(s.live.updated_at)
        .bind(&s.live.updated_by)
        .bind(s.live.as_of)
        .bind(&s.site.id)
        .execute($exec)
        .await
    }};
}

impl Store {
    pub async fn all_shelters(&self) -> anyhow::Result<Vec<Shelter>> {
        let rows: Vec<ShelterRow> = on_backend!(self, |pool| {
            sqlx::query_as(select_shelter!("order by id"))
                .fetch_all(pool)
                .await
        })?;
        to_shelters(rows)
    }

    /// One municipality's shelters (a live `area:` snapshot).
    pub async fn shelters_of(
        &self,
        municipality: &MunicipalityCode,
    ) -> anyhow::Result<Vec<Shelter>> {
        let rows: Vec<ShelterRow> = on_backend!(self, |pool| {
            sqlx::query_as(select_shelter!("where municipality = $1 order by id"))
                .bind(municipality.as_str())
                .fetch_all(pool)
                .await
        })?;
        to_shelters(rows)
    }

    pub async fn shelter(&self, id: &str) -> anyhow::Result<Option<Shelter>> {
        let row: Option<ShelterRow> = on_backend!(self, |pool| {
            sqlx::query_as(select_shelter!("where id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Shelter::try_from).transpose()
    }

    /// Sets each shelter's self-reported arrivals to `counts` (absent: 0),
    /// with the counts' own events (`also`); the shelters that changed, as
    /// stored.
    pub async fn set_self_reported(
        &self,
        counts: &std::collections::BTreeMap<String, u64>,
        also: &[events::Addressed],
    ) -> Result<Vec<Shelter>, StoreError> {
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Write first, so the transaction holds the write lock before it reads.
            sqlx::query(
                "update shelter set self_reported = self_reported where self_reported <> 0",
            )
            .execute(&mut *tx)
            .await?;
            let counted: Vec<String> =
                sqlx::query_scalar("select id from shelter where self_reported <> 0")
                    .fetch_all(&mut *tx)
                    .await?;
            let ids: std::collections::BTreeSet<&String> =
                counted.iter().chain(counts.keys()).collect();
            let mut changed = Vec::new();
            for id in ids {
                let n = counts.get(id).copied().unwrap_or(0) as i64;
                let done = sqlx::query(
                    "update shelter set self_reported = $1 where id = $2 and self_reported <> $1",
                )
                .bind(n)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    let row: ShelterRow = sqlx::query_as(select_shelter!("where id = $1"))
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    changed.push(Shelter::try_from(row)?);
                }
            }
            outbox!(&mut *tx, also)?;
            outbox!(&mut *tx, &events::shelters_changed(&changed))?;
            tx.commit().await?;
            Ok(changed)
        })
    }

    /// The audit trail of one shelter or incident, newest first.
    pub async fn audit_trail(
        &self,
        target: &str,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query_as(
                "select id, at, actor, action, target, before, after from audit_event \
                 where target = $1 order by id desc limit $2",
            )
            .bind(target)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    pub async fn shelter_count(&self) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query_scalar("select count(*) from shelter")
                .fetch_one(pool)
                .await
        })
    }

    /// A change to one shelter's live state, made only if `check` accepts
    /// the shelter as it is (read under the row's lock).
    pub async fn update_live<E>(
        &self,
        actor: &Actor,
        id: &str,
        update: &LiveUpdate,
        check: impl FnOnce(&Shelter) -> Result<(), E>,
    ) -> Result<Shelter, Guarded<E>> {
        let now = super::now();
        let shelter = on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query("update shelter set status = status where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row: ShelterRow = sqlx::query_as(select_shelter!("where id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let before = Shelter::try_from(row)?;
            check(&before).map_err(Guarded::Refused)?;
            let mut after = before.clone();
            after.live.apply(update, after.site.capacity.people());
            after.live.updated_at = Some(now);
            after.live.updated_by = Some(actor.display_name());
            // The office confirms the state as of now.
            after.live.as_of = Some(now);
            write_live!(&mut *tx, &after)?;
            audit!(
                &mut *tx,
                actor,
                now,
                "shelter.update",
                id,
                Some(&before.live),
                Some(&after.live),
            )?;
            outbox!(
                &mut *tx,
                &events::shelters_changed(std::slice::from_ref(&after))
            )?;
            tx.commit().await?;
            Ok::<_, Guarded<E>>(after)
        })?;
        Ok(shelter)
    }
}

// After the macros above, which it uses.
mod files;
pub use files::{ImportOutcome, SnapshotOutcome};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_needs_from_before_the_list_are_kept_in_the_note() {
        let stored = vec!["water".to_owned(), "毛布".to_owned(), "灯油".to_owned()];
        let (needs, note) = needs_from_stored(stored.clone(), None);
        assert_eq!(needs, vec![ShelterNeed::Water]);
        assert_eq!(note.as_deref(), Some("毛布、灯油"));
        let (_, note) = needs_from_stored(stored, Some("夜間のみ".into()));
        assert_eq!(note.as_deref(), Some("夜間のみ 毛布、灯油"));
        let (needs, note) = needs_from_stored(vec!["food".into()], None);
        assert_eq!((needs, note), (vec![ShelterNeed::Food], None));
    }
}
