//! Claims: a volunteer takes all or part of a request, delivers or releases it.

use super::*;

/// A claim and, for its holder, the request with its contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimAnswer {
    pub claim: Claim,
    pub request: PrivateRequest,
}

/// Claims `quantity` units of a request for a volunteer or coordinator of
/// its municipality; answers with the request's contact.
pub async fn claim(
    s: &Services,
    caller: &Caller,
    id: &str,
    quantity: Option<i32>,
) -> Result<ClaimAnswer, DomainError> {
    let account = helper(caller)?;
    let request = s
        .store
        .aid_request(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !account.may_act_in(&request.municipality) {
        return Err(DomainError::Forbidden(format!(
            "this volunteer is registered for municipalities {}, not {}",
            codes(&account.municipalities),
            request.municipality
        )));
    }
    let remaining = request.quantity - request.claimed;
    let open = matches!(
        request.status,
        RequestStatus::Open | RequestStatus::PartiallyClaimed
    ) && !request.hidden;
    // All that is left, when no quantity is given.
    let quantity = quantity.unwrap_or(if open { remaining } else { 1 });
    if quantity < 1 {
        return Err(DomainError::field(
            "quantity",
            "a whole number of units, at least 1",
        ));
    }
    // Refused at once when it is already plain that it cannot be had: on a
    // hot request, refusals then do not queue behind the claims that hold
    // the row. (The claim's own UPDATE stays the only judge of a success.)
    if !open || quantity > remaining {
        let refusal = if open {
            ClaimRefusal::TooMuch { remaining }
        } else {
            ClaimRefusal::NotActive(request.status)
        };
        metrics::counter!("anpi_aid_claims_total", "outcome" => "conflict").increment(1);
        return Err(refused_claim(
            refusal,
            &request,
            s.aid_rules.throttle_min_ratio,
        ));
    }
    let due = crate::store::now() + TimeDelta::minutes(i64::from(s.aid_rules.claim_minutes));
    let claimed = s
        .store
        .claim_aid(
            &caller.actor(),
            &NewClaim {
                request_id: id,
                account_id: account.id,
                quantity,
                due_at: due,
            },
            s.throttle(),
            &s.audience,
        )
        .await
        .inspect(|_| {
            metrics::counter!("anpi_aid_claims_total", "outcome" => "accepted").increment(1)
        })
        .map_err(|e| match e {
            Guarded::NotFound => not_found(id),
            Guarded::Store(e) => e.into(),
            Guarded::Refused(refusal) => {
                let outcome = match refusal {
                    ClaimRefusal::Throttled { .. } => "throttled",
                    _ => "conflict",
                };
                metrics::counter!("anpi_aid_claims_total", "outcome" => outcome).increment(1);
                refused_claim(refusal, &request, s.aid_rules.throttle_min_ratio)
            }
        })?;
    s.now_indexed_request(&claimed.request);
    // Stored: from here on nothing may fail, or a volunteer would be told
    // "no" about a claim they hold.
    Ok(ClaimAnswer {
        request: PrivateRequest {
            public: s
                .audience
                .request_view(&claimed.request, crate::store::now()),
            at: claimed.request.at,
            contact: s.open_contact(claimed.contact.as_deref(), &claimed.request.id),
            // Their own claims only: who else claimed is not theirs to see.
            claims: claimed
                .claims
                .into_iter()
                .filter(|c| c.account_id == account.id)
                .collect(),
            inbox: None,
        },
        claim: claimed.claim,
    })
}

/// Why a claim was refused, for the volunteer.
fn refused_claim(refusal: ClaimRefusal, request: &AidRequest, min_ratio: f64) -> DomainError {
    match refusal {
        ClaimRefusal::TooMuch { remaining } => DomainError::Conflict(format!(
            "only {remaining} units of this request are still unclaimed; claim at most that many"
        )),
        ClaimRefusal::NotActive(status) => DomainError::Conflict(format!(
            "the request is {} and cannot be claimed",
            if request.hidden {
                "hidden pending moderation"
            } else {
                status.as_str()
            }
        )),
        ClaimRefusal::Throttled {
            open,
            delivered,
            closed,
        } => DomainError::Throttled(format!(
            "you hold {open} undelivered claims and delivered {delivered} of {closed} closed ones \
             (below {:.0}%): deliver or release some before claiming more",
            min_ratio * 100.0
        )),
    }
}

/// The holder marks a claim delivered, or releases it (with a reason); the
/// municipality's office or coordinators may do the same.
pub async fn close_claim(
    s: &Services,
    caller: &Caller,
    claim_id: &str,
    to: ClaimStatus,
    reason: Option<&str>,
) -> Result<Claim, DomainError> {
    let account = match caller {
        Caller::Account(a) => a.clone(),
        _ => return Err(DomainError::Unauthorized),
    };
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if to == ClaimStatus::Released {
        match reason {
            None => {
                return Err(DomainError::field(
                    "reason",
                    "say why the claim is released",
                ));
            }
            Some(r) if r.chars().count() > MAX_REASON_CHARS => {
                return Err(DomainError::field(
                    "reason",
                    format!("at most {MAX_REASON_CHARS} characters"),
                ));
            }
            Some(_) => {}
        }
    }
    let claim = s
        .store
        .aid_claim(claim_id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no claim with id {claim_id}")))?;
    let request = s
        .store
        .aid_request(&claim.request_id)
        .await?
        .ok_or_else(|| not_found(&claim.request_id))?;
    let overseer = matches!(account.role, Role::Official | Role::Coordinator)
        && account.may_act_in(&request.municipality);
    if claim.account_id != account.id && !overseer {
        return Err(DomainError::Forbidden(
            "only the claim's holder or the municipality's office or coordinators may change it"
                .into(),
        ));
    }
    let (after, request) = s
        .store
        .close_claim(&caller.actor(), claim_id, to, reason, &s.audience, |_| {
            Ok::<(), DomainError>(())
        })
        .await
        .map_err(|e| match e {
            Guarded::NotFound => DomainError::NotFound(format!("no claim with id {claim_id}")),
            Guarded::Store(e) => e.into(),
            Guarded::Refused(CloseRefusal::Check(e)) => e,
            Guarded::Refused(CloseRefusal::NotLive(status)) => {
                DomainError::Conflict(format!("the claim is {} already", status.as_str()))
            }
        })?;
    s.now_indexed_request(&request);
    Ok(after)
}

/// A volunteer's claims, newest first.
pub async fn my_claims(s: &Services, caller: &Caller) -> Result<Vec<ClaimAnswer>, DomainError> {
    let account = helper(caller)?;
    let mut out = Vec::new();
    for claim in s.store.claims_of(account.id).await? {
        if let Some(request) = s.store.aid_request(&claim.request_id).await? {
            // The contact only while the claim is the volunteer's to act on.
            let mut view = s.private_view(&request, false).await?;
            if !matches!(claim.status, ClaimStatus::Live | ClaimStatus::Delivered) {
                view.contact = None;
                view.at = view.public.place;
            }
            view.claims.retain(|c| c.account_id == account.id);
            out.push(ClaimAnswer {
                claim,
                request: view,
            });
        }
    }
    Ok(out)
}
