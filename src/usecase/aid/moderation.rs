//! Reports and the decisions of offices and coordinators on hidden records.

use super::*;

/// A hidden record awaiting a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hidden<T> {
    #[serde(flatten)]
    pub record: T,
    /// Reports by reason.
    pub reports: Vec<(String, i64)>,
}

/// The moderation queue of a coordinator or office.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModerationQueue {
    pub requests: Vec<Hidden<PublicRequest>>,
    pub offers: Vec<Hidden<PublicOffer>>,
}

/// Someone reports a record; past the threshold of distinct reporters it
/// is hidden until a coordinator or office decides. `reporter` identifies
/// the reporter (an account, or a keyed hash of the network address).
pub async fn report(
    s: &Services,
    kind: RecordKind,
    id: &str,
    reporter: &str,
    reason: &str,
) -> Result<(), DomainError> {
    if crate::domain::aid::ReportReason::parse(reason).is_none() {
        return Err(DomainError::field(
            "reason",
            format!(
                "{reason:?} is not one of spam, abuse, duplicate, wrong_place, already_resolved"
            ),
        ));
    }
    let exists = match kind {
        RecordKind::Request => s.store.aid_request(id).await?.is_some(),
        RecordKind::Offer => s.store.aid_offer(id).await?.is_some(),
    };
    if !exists {
        return Err(DomainError::NotFound(format!(
            "no aid {} with id {id}",
            kind.as_str()
        )));
    }
    let n = s.store.report_aid(kind, id, reporter, reason).await?;
    if n >= i64::from(s.aid_rules.reports_to_hide) {
        set_hidden(s, &Actor::Operator("reports"), kind, id, true).await?;
    }
    Ok(())
}

/// Hides or shows a record (an idempotent change, audited).
async fn set_hidden(
    s: &Services,
    actor: &Actor,
    kind: RecordKind,
    id: &str,
    hidden: bool,
) -> Result<(), DomainError> {
    let action = if hidden { "aid.hide" } else { "aid.restore" };
    match kind {
        RecordKind::Request => {
            let after = s
                .store
                .change_aid_request(actor, id, action, &s.audience, |r| {
                    r.hidden = hidden;
                    Ok::<_, DomainError>(None)
                })
                .await
                .map_err(|e| guarded(e, || format!("no aid request with id {id}")))?;
            s.now_indexed_request(&after);
        }
        RecordKind::Offer => {
            let after = s
                .store
                .change_aid_offer(actor, id, action, &s.audience, |o| {
                    o.hidden = hidden;
                    Ok::<_, DomainError>(())
                })
                .await
                .map_err(|e| guarded(e, || format!("no aid offer with id {id}")))?;
            s.now_indexed_offer(&after);
        }
    }
    Ok(())
}

/// What a coordinator or office has to decide on in its municipalities.
pub async fn moderation_queue(
    s: &Services,
    caller: &Caller,
) -> Result<ModerationQueue, DomainError> {
    let account = overseer(caller)?;
    let (requests, offers) = s.store.hidden_aid(&account.municipalities).await?;
    let now = crate::store::now();
    let mut queue = ModerationQueue {
        requests: Vec::new(),
        offers: Vec::new(),
    };
    for r in requests {
        queue.requests.push(Hidden {
            reports: s.store.aid_reports(RecordKind::Request, &r.id).await?,
            record: s.audience.request_view(&r, now),
        });
    }
    for o in offers {
        queue.offers.push(Hidden {
            reports: s.store.aid_reports(RecordKind::Offer, &o.id).await?,
            record: s.audience.offer_view(&o, now),
        });
    }
    Ok(queue)
}

/// A coordinator's or office's decision on a hidden record: `restore` it
/// (its reports are cleared) or `remove` it for good (withdrawn).
pub async fn decide(
    s: &Services,
    caller: &Caller,
    kind: RecordKind,
    id: &str,
    decision: &str,
) -> Result<(), DomainError> {
    let account = overseer(caller)?;
    let municipality = match kind {
        RecordKind::Request => s.store.aid_request(id).await?.map(|r| r.municipality),
        RecordKind::Offer => s.store.aid_offer(id).await?.map(|o| o.municipality),
    }
    .ok_or_else(|| DomainError::NotFound(format!("no aid {} with id {id}", kind.as_str())))?;
    if !account.may_act_in(&municipality) {
        return Err(DomainError::Forbidden(format!(
            "this record belongs to municipality {municipality}, which this token may not act on"
        )));
    }
    let actor = caller.actor();
    match decision {
        "restore" => {
            set_hidden(s, &actor, kind, id, false).await?;
            s.store.clear_aid_reports(kind, id).await?;
        }
        "remove" => match kind {
            RecordKind::Request => {
                let after = s
                    .store
                    .change_aid_request(&actor, id, "aid.remove", &s.audience, |r| {
                        r.hidden = true;
                        if r.status.is_active() {
                            r.status = RequestStatus::Withdrawn;
                        }
                        Ok::<_, DomainError>(None)
                    })
                    .await
                    .map_err(|e| guarded(e, || format!("no aid request with id {id}")))?;
                s.now_indexed_request(&after);
            }
            RecordKind::Offer => {
                let after = s
                    .store
                    .change_aid_offer(&actor, id, "aid.remove", &s.audience, |o| {
                        o.hidden = true;
                        o.status = OfferStatus::Withdrawn;
                        Ok::<_, DomainError>(())
                    })
                    .await
                    .map_err(|e| guarded(e, || format!("no aid offer with id {id}")))?;
                s.now_indexed_offer(&after);
            }
        },
        other => {
            return Err(DomainError::field(
                "decision",
                format!("{other:?} is not one of restore, remove"),
            ));
        }
    }
    Ok(())
}
