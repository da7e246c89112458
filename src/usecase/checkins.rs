//! "I'm safe": a check-in, stored through the surge write path and answered
//! only once its batch committed (with its live events, in the outbox).

use super::Services;
use crate::checkin::SubmitError;
use crate::error::{DomainError, FieldError};
use crate::store::{CheckinRequest, Committed, Receipt};

/// Stores one check-in (already validated and normalised at the edge).
/// Whether the incident is open is checked in the batch's transaction: no
/// read per request, and no check-in slips in after a close.
pub async fn check_in(s: &Services, request: CheckinRequest) -> Result<Receipt, DomainError> {
    let id = request.incident_id.clone();
    match s.checkins.submit(request).await {
        Ok(Committed::New { receipt, .. }) | Ok(Committed::Replayed(receipt)) => Ok(receipt),
        Ok(Committed::KeyReused) => Err(DomainError::Conflict(
            "this Idempotency-Key was used for another check-in; use a new key".into(),
        )),
        Ok(Committed::NoIncident) => {
            Err(DomainError::NotFound(format!("no incident with id {id}")))
        }
        Ok(Committed::Closed(at)) => Err(DomainError::Conflict(format!(
            "incident {id} closed at {}; check-ins are no longer taken",
            at.to_rfc3339()
        ))),
        Err(SubmitError::Busy) => Err(DomainError::Busy(
            "too many check-ins are waiting to be stored; nothing was recorded".into(),
            1,
        )),
        Err(SubmitError::Failed(e)) if e.refused => {
            Err(DomainError::Unusable(vec![FieldError::new(
                "body",
                "this check-in cannot be stored as sent; nothing was recorded",
            )]))
        }
        Err(SubmitError::Failed(e)) => {
            tracing::error!(error = %e, "check-in not stored");
            Err(DomainError::Busy(
                "the check-in could not be stored; nothing was recorded".into(),
                2,
            ))
        }
    }
}
