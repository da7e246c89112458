//! An office changes shelters: one at a time, by its registry file, or by
//! the open-shelter snapshot it posts after an incident.

use super::{Services, acting_in, guarded, may_act};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{LiveUpdate, Shelter};
use crate::error::{DomainError, FieldError};
use crate::import::{self, FileError};
use crate::store::{Actor, AuditEvent, ImportOutcome, Official, SnapshotOutcome};

/// A shelter state's version: the moment of its last change, in
/// microseconds (0 for one never changed). Offices send it back
/// (`If-Match`) so an edit made on a state someone else has since changed
/// is refused, not applied over theirs.
pub fn version(shelter: &Shelter) -> i64 {
    shelter.live.updated_at.map_or(0, |t| t.timestamp_micros())
}

/// An office changes one shelter's live state (only its municipality's);
/// with `expected`, only if the state is still that version.
pub async fn update(
    s: &Services,
    actor: &Actor,
    id: &str,
    update: &LiveUpdate,
    expected: Option<i64>,
) -> Result<Shelter, DomainError> {
    let shelter = s
        .store
        .update_live(actor, id, update, |shelter| {
            may_act(actor, &shelter.site.municipality).map_err(|_| {
                DomainError::Forbidden(format!(
                    "shelter {id} belongs to municipality {}, which this token may not act on",
                    shelter.site.municipality
                ))
            })?;
            match expected {
                Some(v) if v != version(shelter) => Err(DomainError::EditConflict {
                    message: format!(
                        "shelter {id} was changed by {} since you read it; nothing of yours was applied",
                        shelter.live.updated_by.as_deref().unwrap_or("someone")
                    ),
                    current: serde_json::to_value(shelter).expect("shelters serialise"),
                }),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| guarded(e, || format!("no shelter with id {id}")))?;
    s.live.changed([shelter.clone()]);
    Ok(shelter)
}

/// The audit trail of a shelter (newest first, at most `limit`), for an
/// office of its municipality.
pub async fn history(
    s: &Services,
    official: &Official,
    id: &str,
    limit: i64,
) -> Result<Vec<AuditEvent>, DomainError> {
    let shelter = s
        .index
        .get(id)
        .ok_or_else(|| DomainError::NotFound(format!("no shelter with id {id}")))?;
    acting_in(official, &shelter.site.municipality)?;
    Ok(s.store.audit_trail(id, limit).await?)
}

/// A registry file (national standard list or GSI layout, UTF-8 or
/// Shift_JIS): its rows upserted by id. Rows outside the actor's
/// municipalities and unreadable rows are reported; the others applied.
pub async fn import_registry(
    s: &Services,
    actor: &Actor,
    file: &[u8],
) -> Result<ImportOutcome, DomainError> {
    let text = import::decode(file).map_err(unusable_file)?;
    let parsed = import::parse_registry(&text).map_err(unusable_file)?;
    let scope = match actor {
        Actor::Official(official) => {
            if let Some((_, first)) = parsed.sites.first()
                && !parsed
                    .sites
                    .iter()
                    .any(|(_, site)| official.may_act_in(&site.municipality))
            {
                may_act(actor, &first.municipality)?;
            }
            Some(official.municipalities.as_slice())
        }
        Actor::Member(_) | Actor::Resident | Actor::Operator(_) => None,
    };
    let mut outcome = s.store.import_sites(actor, parsed.sites, scope).await?;
    outcome.problems.extend(parsed.problems);
    outcome.problems.sort_by_key(|p| p.line);
    s.live.changed(std::mem::take(&mut outcome.changed));
    Ok(outcome)
}

/// A municipality's open-shelter snapshot, all or nothing: listed shelters
/// open with their headcount, every other one of the municipality closed.
/// A snapshot that lists none closes them all only with `close_all`. A
/// `preview` changes nothing and says what applying would change.
pub async fn apply_snapshot(
    s: &Services,
    actor: &Actor,
    municipality: &MunicipalityCode,
    file: &[u8],
    close_all: bool,
    preview: bool,
) -> Result<SnapshotOutcome, DomainError> {
    may_act(actor, municipality)?;
    let text = import::decode(file).map_err(unusable_file)?;
    let snapshot = import::parse_status_snapshot(&text, municipality).map_err(unusable_file)?;
    if snapshot.rows.is_empty() && snapshot.problems.is_empty() && !close_all && !preview {
        // A header and nothing else is more often a wrong export than a
        // city closing every shelter at once: that needs saying so.
        return Err(DomainError::Unusable(vec![FieldError::new(
            "close_all",
            format!(
                "the snapshot lists no open shelter, so it would close every shelter of {municipality}; \
                 send it again with ?close_all=true if that is meant"
            ),
        )]));
    }
    let mut outcome = s
        .store
        .apply_status_snapshot(actor, municipality, snapshot, preview)
        .await?;
    // Unusable rows leave everything as it was (applied or previewed).
    if !outcome.problems.is_empty() {
        return Err(DomainError::Unusable(
            outcome
                .problems
                .iter()
                .map(|p| FieldError {
                    field: p.column.clone().unwrap_or_else(|| "row".into()),
                    message: p.reason.clone(),
                    line: Some(p.line),
                })
                .collect(),
        ));
    }
    s.live.changed(std::mem::take(&mut outcome.changed));
    Ok(outcome)
}

/// A file that cannot be read as a whole.
fn unusable_file(e: FileError) -> DomainError {
    let field = match e {
        FileError::Encoding(_) => "encoding",
        FileError::Header(_) => "header",
        FileError::Empty | FileError::TooManyRows => "body",
    };
    DomainError::Unusable(vec![FieldError::new(field, e.to_string())])
}
