//! What the clock does to aid: lapses, reminders, expiry.

use super::*;

/// What one sweep did.
#[derive(Debug, Default, PartialEq)]
pub struct Swept {
    /// Claims not delivered in time, their units given back.
    pub lapsed: usize,
    /// Open requests not reconfirmed for too long.
    pub expired: usize,
    /// Owners asked to reconfirm a record that went stale.
    pub reminded: usize,
}

/// The clock's work: claims not delivered in time lapse (their holders are
/// told on their inboxes), owners of stale records are asked to reconfirm
/// them, and open requests not reconfirmed for too long expire.
pub async fn sweep(s: &Services) -> Result<Swept, DomainError> {
    let now = crate::store::now();
    let actor = Actor::Operator("aid clock");
    let mut lapsed = 0;
    for claim in s.store.claims_due(now).await? {
        match s
            .store
            .close_claim(
                &actor,
                &claim.id,
                ClaimStatus::Lapsed,
                Some("not delivered in time"),
                &s.audience,
                |_| Ok::<(), ()>(()),
            )
            .await
        {
            Ok((_, request)) => {
                lapsed += 1;
                s.aid.upsert_request(request);
            }
            // Delivered or released meanwhile.
            Err(Guarded::Refused(_) | Guarded::NotFound) => {}
            Err(Guarded::Store(e)) => return Err(e.into()),
        }
    }
    let cutoff = now - TimeDelta::hours(i64::from(s.aid_rules.request_expire_hours));
    let mut expired = 0;
    for id in s.store.aid_requests_unconfirmed_since(cutoff).await? {
        let changed = s
            .store
            .change_aid_request(&actor, &id, "aid.request.expire", &s.audience, |r| {
                if !matches!(
                    r.status,
                    RequestStatus::Open | RequestStatus::PartiallyClaimed
                ) || r.confirmed_at >= cutoff
                {
                    return Err(());
                }
                r.status = RequestStatus::Expired;
                Ok(None)
            })
            .await;
        match changed {
            Ok(after) => {
                expired += 1;
                s.aid.upsert_request(after);
            }
            Err(Guarded::Refused(()) | Guarded::NotFound) => {}
            Err(Guarded::Store(e)) => return Err(e.into()),
        }
    }
    let reminded = s
        .store
        .remind_stale_aid(
            now - s.audience.request_stale_after,
            now - s.audience.offer_stale_after,
            &s.audience,
        )
        .await?;
    if lapsed + expired + reminded > 0 {
        s.live.changed([]);
    }
    Ok(Swept {
        lapsed,
        expired,
        reminded,
    })
}
