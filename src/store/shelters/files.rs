//! What a file does to the registry: a registry import (upsert by id, row
//! by row) and an open-shelter snapshot (all or nothing).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::super::outbox::outbox;
use super::super::{Actor, Store, audit, on_backend, to_json};
use super::{ShelterRow, to_shelters};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{Shelter, ShelterKind, ShelterSite, ShelterStatus};
use crate::events;
use crate::import::{RowProblem, StatusSnapshot};

/// What an import of the registry did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows that were not imported, and why; the others were.
    pub problems: Vec<RowProblem>,
    /// The shelters as they are now, for the index (not part of the answer).
    #[serde(skip)]
    pub changed: Vec<Shelter>,
}

/// What a status snapshot did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SnapshotOutcome {
    /// False when any row could not be used: a snapshot states the whole open
    /// set, so it is applied entirely or not at all.
    pub applied: bool,
    /// The moment the snapshot describes.
    pub as_of: Option<DateTime<Utc>>,
    /// Listed shelters now open (or full).
    pub open: u64,
    /// Listed sites that were not in the registry and were added.
    pub added: u64,
    /// Shelters of the municipality closed because the snapshot omits them.
    pub closed: u64,
    pub problems: Vec<RowProblem>,
    /// Every shelter whose status or occupancy it changes (or would, in a
    /// preview), before and after.
    pub changes: Vec<SnapshotChange>,
    #[serde(skip)]
    pub changed: Vec<Shelter>,
}

/// One shelter a snapshot changes.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SnapshotChange {
    pub id: String,
    pub name: String,
    /// None for a site the snapshot adds.
    pub status_before: Option<ShelterStatus>,
    pub occupancy_before: Option<i64>,
    pub status_after: ShelterStatus,
    pub occupancy_after: i64,
}

impl SnapshotChange {
    fn of(before: Option<&Shelter>, after: &Shelter) -> Self {
        SnapshotChange {
            id: after.site.id.clone(),
            name: after.site.name.clone(),
            status_before: before.map(|b| b.live.status),
            occupancy_before: before.map(|b| b.live.occupancy),
            status_after: after.live.status,
            occupancy_after: after.live.occupancy,
        }
    }
}

impl Store {
    /// Upserts registry rows by id, in one transaction. Rows outside
    /// `allowed` (when given) or whose id belongs to another municipality
    /// become problems; the rest are applied. Live state is never touched.
    pub async fn import_sites(
        &self,
        actor: &Actor,
        sites: Vec<(u64, ShelterSite)>,
        allowed: Option<&[MunicipalityCode]>,
    ) -> anyhow::Result<ImportOutcome> {
        let mut outcome = ImportOutcome::default();
        let mut accepted = Vec::with_capacity(sites.len());
        for (line, site) in sites {
            if allowed.is_some_and(|allowed| !allowed.contains(&site.municipality)) {
                outcome.problems.push(RowProblem {
                    line,
                    column: Some("所在地_全国地方公共団体コード".into()),
                    reason: format!(
                        "municipality {} is not one this token may act on",
                        site.municipality
                    ),
                });
            } else {
                accepted.push((line, site));
            }
        }
        let municipalities: BTreeSet<&str> = accepted
            .iter()
            .map(|(_, s)| s.municipality.as_str())
            .collect();
        let now = super::super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            for m in &municipalities {
                sqlx::query(
                    "update shelter set municipality = municipality where municipality = $1",
                )
                .bind(*m)
                .execute(&mut *tx)
                .await?;
            }
            for (line, site) in &accepted {
                let row: Option<ShelterRow> = sqlx::query_as(select_shelter!("where id = $1"))
                    .bind(&site.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let before = row.map(Shelter::try_from).transpose()?;
                if let Some(b) = &before {
                    if b.site.municipality != site.municipality {
                        outcome.problems.push(RowProblem {
                            line: *line,
                            column: Some("ID".into()),
                            reason: format!(
                                "id {} already belongs to a shelter of municipality {}",
                                site.id, b.site.municipality
                            ),
                        });
                        continue;
                    }
                    if b.site == *site {
                        outcome.unchanged += 1;
                        continue;
                    }
                }
                sqlx::query(
                    "insert into shelter (id, municipality, name, name_kana, name_en, address, lat, lon, \
                     elevation_m, phone, hazards, kind, capacity_indoor, capacity_outdoor, capacity_text, \
                     served_area, created_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                     on conflict (id) do update set municipality = excluded.municipality, name = excluded.name, \
                     name_kana = excluded.name_kana, name_en = excluded.name_en, address = excluded.address, \
                     lat = excluded.lat, lon = excluded.lon, elevation_m = excluded.elevation_m, \
                     phone = excluded.phone, hazards = excluded.hazards, kind = excluded.kind, \
                     capacity_indoor = excluded.capacity_indoor, capacity_outdoor = excluded.capacity_outdoor, \
                     capacity_text = excluded.capacity_text, served_area = excluded.served_area",
                )
                .bind(&site.id)
                .bind(site.municipality.as_str())
                .bind(&site.name)
                .bind(&site.name_kana)
                .bind(&site.name_en)
                .bind(&site.address)
                .bind(site.location.map(|l| l.lat))
                .bind(site.location.map(|l| l.lon))
                .bind(site.elevation_m)
                .bind(&site.phone)
                .bind(site.hazards.bits())
                .bind(site.kind.name())
                .bind(site.capacity.indoor)
                .bind(site.capacity.outdoor)
                .bind(&site.capacity.text)
                .bind(&site.served_area)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let after = Shelter {
                    site: site.clone(),
                    live: before.as_ref().map(|b| b.live.clone()).unwrap_or_default(),
                };
                audit!(
                    &mut *tx,
                    actor,
                    now,
                    "shelter.import",
                    &site.id,
                    before.as_ref().map(|b| &b.site),
                    Some(&after.site),
                )?;
                if before.is_some() {
                    outcome.updated += 1;
                } else {
                    outcome.inserted += 1;
                }
                outcome.changed.push(after);
            }
            outbox!(&mut *tx, &events::shelters_changed(&outcome.changed))?;
            tx.commit().await?;
            anyhow::Ok(())
        })?;
        outcome.problems.sort_by_key(|p| p.line);
        Ok(outcome)
    }

    /// Applies a municipality's open-shelter snapshot, all or nothing: every listed shelter
    /// open with its headcount (added as non-designated when unknown), every
    /// other open or full shelter of the municipality closed. Shelters marked
    /// `unsafe` stay unsafe unless listed: a list of open places is no word
    /// on a damaged building.
    ///
    /// A `preview` does all of it in a transaction it then rolls back: the
    /// outcome says what applying would change, and nothing is changed.
    pub async fn apply_status_snapshot(
        &self,
        actor: &Actor,
        municipality: &MunicipalityCode,
        snapshot: StatusSnapshot,
        preview: bool,
    ) -> anyhow::Result<SnapshotOutcome> {
        let now = super::super::now();
        let mut outcome = SnapshotOutcome {
            as_of: snapshot.as_of,
            problems: snapshot.problems,
            ..SnapshotOutcome::default()
        };
        if !outcome.problems.is_empty() {
            return Ok(outcome);
        }
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("update shelter set municipality = municipality where municipality = $1")
                .bind(municipality.as_str())
                .execute(&mut *tx)
                .await?;
            let rows: Vec<ShelterRow> = sqlx::query_as(select_shelter!("where municipality = $1"))
                .bind(municipality.as_str())
                .fetch_all(&mut *tx)
                .await?;
            // In id order, so the shelters a snapshot closes are listed (and
            // previewed) the same way every time.
            let mut current: BTreeMap<String, Shelter> = to_shelters(rows)?
                .into_iter()
                .map(|s| (s.site.id.clone(), s))
                .collect();
            let mut listed = BTreeSet::new();
            for row in snapshot.rows {
                let before = match current.remove(&row.id) {
                    Some(existing) => Some(existing),
                    None => {
                        let elsewhere: Option<String> =
                            sqlx::query_scalar("select municipality from shelter where id = $1")
                                .bind(&row.id)
                                .fetch_optional(&mut *tx)
                                .await?;
                        if let Some(other) = elsewhere {
                            outcome.problems.push(RowProblem {
                                line: row.line,
                                column: Some("ID".into()),
                                reason: format!(
                                    "id {} belongs to a shelter of municipality {other}",
                                    row.id
                                ),
                            });
                            continue;
                        }
                        None
                    }
                };
                listed.insert(row.id.clone());
                let site = match &before {
                    Some(b) => b.site.clone(),
                    None => ShelterSite {
                        kind: ShelterKind::NonDesignated,
                        municipality: municipality.clone(),
                        ..row.site
                    },
                };
                let mut live = before.as_ref().map(|b| b.live.clone()).unwrap_or_default();
                live.status = match site.capacity.people() {
                    Some(cap) if row.occupancy >= cap => ShelterStatus::Full,
                    _ => ShelterStatus::Open,
                };
                live.occupancy = row.occupancy;
                live.as_of = snapshot.as_of;
                live.updated_at = Some(now);
                live.updated_by = Some(actor.display_name());
                let after = Shelter { site, live };
                if before.is_none() {
                    insert_shelter!(&mut *tx, &after, now)?;
                    outcome.added += 1;
                } else {
                    write_live!(&mut *tx, &after)?;
                }
                outcome.open += 1;
                let changed = before.as_ref().is_none_or(|b| {
                    b.live.status != after.live.status || b.live.occupancy != after.live.occupancy
                });
                if changed {
                    outcome
                        .changes
                        .push(SnapshotChange::of(before.as_ref(), &after));
                    audit!(
                        &mut *tx,
                        actor,
                        now,
                        "shelter.status_snapshot",
                        &after.site.id,
                        before.as_ref().map(|b| &b.live),
                        Some(&after.live),
                    )?;
                }
                outcome.changed.push(after);
            }
            for (_, before) in current {
                if !matches!(
                    before.live.status,
                    ShelterStatus::Open | ShelterStatus::Full
                ) {
                    continue;
                }
                let mut after = before.clone();
                after.live.status = ShelterStatus::Closed;
                after.live.occupancy = 0;
                after.live.as_of = snapshot.as_of;
                after.live.updated_at = Some(now);
                after.live.updated_by = Some(actor.display_name());
                write_live!(&mut *tx, &after)?;
                outcome
                    .changes
                    .push(SnapshotChange::of(Some(&before), &after));
                audit!(
                    &mut *tx,
                    actor,
                    now,
                    "shelter.status_snapshot",
                    &after.site.id,
                    Some(&before.live),
                    Some(&after.live),
                )?;
                outcome.closed += 1;
                outcome.changed.push(after);
            }
            if outcome.problems.is_empty() && preview {
                // Dropping the transaction rolls it back: nothing changed.
                outcome.changed.clear();
            } else if outcome.problems.is_empty() {
                outbox!(&mut *tx, &events::shelters_changed(&outcome.changed))?;
                tx.commit().await?;
                outcome.applied = true;
            } else {
                // Dropping the transaction rolls it back.
                outcome.changed.clear();
                outcome.open = 0;
                outcome.added = 0;
                outcome.closed = 0;
                outcome.changes.clear();
            }
            anyhow::Ok(())
        })?;
        outcome.problems.sort_by_key(|p| p.line);
        Ok(outcome)
    }
}
