//! Offices and volunteer centres post supply points (給水・食料・物資…) for
//! their municipalities: one at a time, or their whole list as CSV.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Services, guarded};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::domain::supply::{Queue, SupplyChange, SupplyPoint, SupplyStatus};
use crate::error::{DomainError, FieldError};
use crate::import::{self, RowProblem};
use crate::store::{Account, Actor, Role};
use crate::supply::SupplyView;

/// What a list upload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupplyImportOutcome {
    pub added: usize,
    pub replaced: usize,
    /// Rows left out, each with its line and column.
    pub problems: Vec<RowProblem>,
}

/// Offices and coordinators of `municipality` write; everyone else is refused.
fn writer(account: &Account, municipality: &MunicipalityCode) -> Result<Actor, DomainError> {
    if !matches!(account.role, Role::Official | Role::Coordinator) {
        return Err(DomainError::Forbidden(
            "supply points are posted by an emergency office or a volunteer centre".into(),
        ));
    }
    if !account.may_act_in(municipality) {
        return Err(DomainError::Forbidden(format!(
            "this token may not act on municipality {municipality}"
        )));
    }
    Ok(match account.as_official() {
        Some(official) => Actor::Official(official),
        None => Actor::Member(account.clone()),
    })
}

/// A new point from a checked change (`check(true)` passed).
fn new_point(
    id: String,
    change: &SupplyChange,
    municipality: MunicipalityCode,
    by: &str,
) -> SupplyPoint {
    let now = crate::store::now();
    let mut point = SupplyPoint {
        id,
        municipality,
        kind: change.kind.expect("checked"),
        name: String::new(),
        at: LatLon {
            lat: change.lat.expect("checked"),
            lon: change.lon.expect("checked"),
        },
        address: None,
        status: SupplyStatus::Open,
        hours: Vec::new(),
        stock: Vec::new(),
        queue: Queue::None,
        wait_minutes: None,
        note: None,
        posted_by: by.to_owned(),
        created_at: now,
        updated_at: now,
        confirmed_at: now,
        confirmed_by: by.to_owned(),
        version: 0,
    };
    change.apply(&mut point);
    point
}

fn municipality_of(change: &SupplyChange) -> Result<MunicipalityCode, DomainError> {
    let code = change.municipality.as_deref().unwrap_or_default();
    MunicipalityCode::parse(code).map_err(|e| DomainError::field("municipality", e.to_string()))
}

/// Posts a supply point.
pub async fn post(
    s: &Services,
    account: &Account,
    mut change: SupplyChange,
) -> Result<SupplyView, DomainError> {
    let errors = change.check(true);
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let municipality = municipality_of(&change)?;
    let actor = writer(account, &municipality)?;
    let point = new_point(
        uuid::Uuid::now_v7().to_string(),
        &change,
        municipality,
        &actor.display_name(),
    );
    s.store.insert_supply_point(&actor, &point).await?;
    s.supply.upsert(point.clone());
    s.live.changed([]);
    Ok(SupplyView::of(&point, point.updated_at))
}

/// Changes a supply point (only its municipality's); with `expected`, only
/// if it is still that version. Every change confirms it: the person
/// changing it is looking at it.
pub async fn change(
    s: &Services,
    account: &Account,
    id: &str,
    mut change: SupplyChange,
    expected: Option<i64>,
) -> Result<SupplyView, DomainError> {
    let errors = change.check(false);
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let held = s
        .supply
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("no supply point with id {id}")))?;
    let actor = writer(account, &held.municipality)?;
    let by = actor.display_name();
    let point = s
        .store
        .change_supply_point(&actor, id, |p| {
            if let Some(v) = expected
                && v != p.version
            {
                return Err(DomainError::EditConflict {
                    message: format!(
                        "supply point {id} was changed by {} since you read it; nothing of yours was applied",
                        p.confirmed_by
                    ),
                    current: serde_json::to_value(SupplyView::of(p, crate::store::now()))
                        .expect("views serialise"),
                });
            }
            change.apply(p);
            p.confirmed_at = crate::store::now();
            p.confirmed_by = by.clone();
            Ok(())
        })
        .await
        .map_err(|e| guarded(e, || format!("no supply point with id {id}")))?;
    s.supply.upsert(point.clone());
    s.live.changed([]);
    Ok(SupplyView::of(&point, point.updated_at))
}

/// A municipality's list (CSV, UTF-8 or Shift_JIS): usable rows are added
/// or replace the point with the same id, all in one transaction; each row
/// that cannot be used is reported and left out.
pub async fn import(
    s: &Services,
    account: &Account,
    municipality: &MunicipalityCode,
    file: &[u8],
) -> Result<SupplyImportOutcome, DomainError> {
    let actor = writer(account, municipality)?;
    let unusable =
        |e: import::FileError| DomainError::Unusable(vec![FieldError::new("body", e.to_string())]);
    let text = import::decode(file).map_err(unusable)?;
    let parsed = import::parse_supply_points(&text, municipality).map_err(unusable)?;
    let mut problems = parsed.problems;
    let mut points = Vec::with_capacity(parsed.rows.len());
    let by = actor.display_name();
    for mut row in parsed.rows {
        let errors = row.change.check(true);
        if let Some(e) = errors.into_iter().next() {
            problems.push(RowProblem {
                line: row.line,
                column: Some(e.field),
                reason: e.message,
            });
            continue;
        }
        // A point of another municipality with the same id is not replaced.
        if let Some(held) = s.supply.get(&row.id)
            && held.municipality != *municipality
        {
            problems.push(RowProblem {
                line: row.line,
                column: Some("id".into()),
                reason: format!("{} is a supply point of {}", row.id, held.municipality),
            });
            continue;
        }
        points.push(new_point(row.id, &row.change, municipality.clone(), &by));
    }
    problems.sort_by_key(|p| p.line);
    let (added, written) = s.store.import_supply_points(&actor, &points).await?;
    let replaced = written.len() - added;
    for p in written {
        s.supply.upsert(p);
    }
    s.live.changed([]);
    Ok(SupplyImportOutcome {
        added,
        replaced,
        problems,
    })
}
