//! Incidents: an office opens one for the municipalities it acts on and
//! closes it; a job deletes the personal data of closed ones on time.

use super::{Services, acting_in, guarded};
use crate::error::DomainError;
use crate::store::{Actor, Incident, NewIncident, Official};

/// Opens an incident; the office must act on every municipality it covers.
pub async fn open(
    s: &Services,
    official: &Official,
    new: NewIncident,
) -> Result<Incident, DomainError> {
    let mut actor = None;
    for m in &new.municipalities {
        actor = Some(acting_in(official, m)?);
    }
    let Some(actor) = actor else {
        return Err(DomainError::field("municipalities", "name at least one"));
    };
    Ok(s.store.create_incident(&actor, new).await?)
}

/// Closes an open incident; its personal data goes `purge_after` later.
pub async fn close(s: &Services, official: &Official, id: &str) -> Result<Incident, DomainError> {
    let actor = Actor::Official(official.clone());
    let incident = s
        .store
        .close_incident(&actor, id, s.purge_after, |before| {
            for m in &before.municipalities {
                acting_in(official, m).map_err(|_| {
                    DomainError::Forbidden(format!(
                        "incident {id} also covers municipality {m}, which this token may not act on"
                    ))
                })?;
            }
            match before.closed_at {
                Some(at) => Err(DomainError::Conflict(format!(
                    "incident {id} was already closed at {}",
                    at.to_rfc3339()
                ))),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| guarded(e, || format!("no incident with id {id}")))?;
    // Its check-ins no longer count as people at shelters.
    s.checkins.incident_changed(id);
    Ok(incident)
}

/// An incident, or why not.
pub async fn find(s: &Services, id: &str) -> Result<Incident, DomainError> {
    s.store
        .incident(id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no incident with id {id}")))
}

/// The incident, for an office of every municipality it covers whose
/// personal data is still kept (PFIF export and import).
pub async fn for_office(
    s: &Services,
    official: &Official,
    id: &str,
) -> Result<Incident, DomainError> {
    let incident = find(s, id).await?;
    for m in &incident.municipalities {
        acting_in(official, m)?;
    }
    if let Some(at) = incident.purged_at {
        return Err(DomainError::Conflict(format!(
            "the personal data of incident {id} was deleted at {}",
            at.to_rfc3339()
        )));
    }
    Ok(incident)
}

/// Deletes the personal data of every closed incident past its `purge_at`,
/// keeping its counts; how many were purged.
pub async fn purge_due(s: &Services) -> Result<usize, DomainError> {
    let due = s.store.incidents_due_for_purge(crate::store::now()).await?;
    for id in &due {
        let stats = crate::stats::of(&s.store, &s.index, id).await?;
        let deleted = s.store.purge_incident(id, &stats).await?;
        tracing::info!(incident = %id, deleted, "personal data of a closed incident deleted");
    }
    Ok(due.len())
}
