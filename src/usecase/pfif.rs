//! PFIF import: people found in Person Finder (or another repository) can be
//! looked up here, and families waiting on them hear of each new note.

use super::Services;
use super::incidents::for_office;
use crate::error::DomainError;
use crate::store::{ImportCounts, Official};

/// Imports a PFIF 1.2–1.4 document into an open incident; all or nothing.
pub async fn import(
    s: &Services,
    official: &Official,
    incident_id: &str,
    xml: &[u8],
) -> Result<ImportCounts, DomainError> {
    let incident = for_office(s, official, incident_id).await?;
    if let Some(at) = incident.closed_at {
        return Err(DomainError::Conflict(format!(
            "incident {incident_id} closed at {}; nothing more is imported",
            at.to_rfc3339()
        )));
    }
    let text = std::str::from_utf8(xml)
        .map_err(|e| DomainError::field("body", format!("not UTF-8: {e}")))?;
    let document = crate::pfif::read(text).map_err(DomainError::Invalid)?;
    let counts = s
        .store
        .pfif_import(incident_id, &document)
        .await?
        .map_err(DomainError::Invalid)?;
    tracing::info!(?counts, "PFIF imported");
    s.live.changed([]);
    s.checkins.incident_changed(incident_id);
    Ok(counts)
}
