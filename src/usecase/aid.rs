//! Aid: residents and offices ask, volunteers offer, claim and deliver,
//! coordinators register volunteers and moderate. Who sees a requester's
//! contact is decided here and nowhere else ([`Services::entitled`]).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Services, guarded};
use crate::aid::{Contact, PublicOffer, PublicRequest};
use crate::aidindex::{MAX_REACH_M, RequestFilter};
use crate::domain::aid::{
    Category, ClaimStatus, Item, RequestStatus, Urgency, check_items, check_note, tidy_items,
};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::person::Phone;
use crate::domain::shelter::LatLon;
use crate::error::{DomainError, FieldError};
use crate::store::{
    Account, Actor, AidOffer, AidRequest, Claim, ClaimRefusal, CloseRefusal, Guarded, NewClaim,
    OfferStatus, RecordKind, Role, Throttle,
};

/// Edit keys start so, which tells them from account tokens.
pub const EDIT_KEY_PREFIX: &str = "anpi_edit_";
/// Longest free-text contact.
const MAX_CONTACT_TEXT: usize = 200;
/// Longest reason for releasing a claim.
const MAX_REASON_CHARS: usize = 200;

/// Who is asking: a token's holder, a requester with an edit key, or
/// anyone.
#[derive(Clone, Debug)]
pub enum Caller {
    Anyone,
    Account(Account),
    EditKey(String),
}

impl Caller {
    fn actor(&self) -> Actor {
        match self {
            Caller::Account(a) => Actor::Member(a.clone()),
            Caller::Anyone | Caller::EditKey(_) => Actor::Resident,
        }
    }

    fn account(&self) -> Option<&Account> {
        match self {
            Caller::Account(a) => Some(a),
            _ => None,
        }
    }
}

/// A new request, as posted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct NewRequest {
    /// Where help is needed (JIS code); taken from the shelter when one is named.
    pub municipality: Option<String>,
    /// One of `GET /v1/aid/categories`.
    pub category: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    /// low, normal (default), high or critical.
    pub urgency: Option<String>,
    /// The exact place (kept private until a claim); the shelter's when omitted.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// A shelter's needs: its id.
    pub shelter_id: Option<String>,
    /// Up to 200 characters, public.
    pub note: Option<String>,
    /// Shown only to a claimant and the municipality's office and coordinators.
    pub contact: Option<Contact>,
}

/// A change to a request; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct RequestPatch {
    pub items: Option<Vec<Item>>,
    pub urgency: Option<String>,
    pub note: Option<String>,
    pub contact: Option<Contact>,
    /// `withdrawn` (no longer needed) or `fulfilled` (received).
    pub status: Option<String>,
    /// The request is still as it says: fresh again, not to expire.
    #[serde(default)]
    pub confirm: bool,
}

/// What the requester keeps: the request and the key to change it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Posted {
    pub request: PrivateRequest,
    /// The edit key (shown once): `Authorization: Bearer <edit_key>`.
    pub edit_key: String,
    /// The page that edits it, key included: keep it on the phone.
    pub edit_link: String,
}

/// A request with what only those entitled see.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PrivateRequest {
    #[serde(flatten)]
    pub public: PublicRequest,
    /// The exact place.
    pub at: LatLon,
    pub contact: Option<Contact>,
    pub claims: Vec<Claim>,
    /// The live channel where the requester hears of claims.
    pub inbox: Option<String>,
}

/// A request, public or private as the caller is entitled.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RequestView {
    Private(Box<PrivateRequest>),
    Public(Box<PublicRequest>),
}

/// A new offer, as posted.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct NewOffer {
    pub municipality: Option<String>,
    pub category: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// How far the holder can go, in metres (up to 100 km; 5 km by default).
    pub reach_m: Option<f64>,
    pub available_from: Option<DateTime<Utc>>,
    pub available_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// A change to an offer.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct OfferPatch {
    pub items: Option<Vec<Item>>,
    pub reach_m: Option<f64>,
    pub available_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// `withdrawn`.
    pub status: Option<String>,
    #[serde(default)]
    pub confirm: bool,
}

/// One ranked match.
#[derive(Debug, Serialize, ToSchema)]
pub struct Match<T> {
    #[serde(flatten)]
    pub record: T,
    /// 0 to 1, as documented in docs/aid.md.
    pub score: f64,
    /// Between the two public places, metres.
    pub distance_m: f64,
}

/// Offers ranked for a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferMatches {
    pub matches: Vec<Match<PublicOffer>>,
}

/// Requests ranked for an offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestMatches {
    pub matches: Vec<Match<PublicRequest>>,
}

/// A claim and, for its holder, the request with its contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimAnswer {
    pub claim: Claim,
    pub request: PrivateRequest,
}

/// A registered volunteer and what the registration desk hands over.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub volunteer: Account,
    /// Shown once.
    pub token: String,
    /// Opens the volunteer page signed in.
    pub sign_in_link: String,
    /// The sign-in link as a QR code (SVG).
    pub qr_svg: String,
}

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

impl Services {
    /// Whether `caller` may see `request`'s contact and exact place: its
    /// requester (edit key), the municipality's office and coordinators,
    /// and whoever holds a live or delivered claim on it.
    pub async fn entitled(
        &self,
        caller: &Caller,
        request: &AidRequest,
    ) -> Result<bool, DomainError> {
        Ok(match caller {
            Caller::Anyone => false,
            Caller::EditKey(key) => self.holds_edit_key(&request.id, key).await?,
            Caller::Account(a) => {
                (matches!(a.role, Role::Official | Role::Coordinator)
                    && a.may_act_in(&request.municipality))
                    || self.store.claims_on(&request.id).await?.iter().any(|c| {
                        c.account_id == a.id
                            && matches!(c.status, ClaimStatus::Live | ClaimStatus::Delivered)
                    })
            }
        })
    }

    async fn holds_edit_key(&self, id: &str, key: &str) -> Result<bool, DomainError> {
        let Some((_, hash)) = self.store.aid_request_secrets(id).await? else {
            return Ok(false);
        };
        Ok(self.secret.hash(key) == hash)
    }

    /// May change the request itself (not just see it): its requester, or
    /// the municipality's office or coordinators.
    async fn may_edit(&self, caller: &Caller, request: &AidRequest) -> Result<bool, DomainError> {
        Ok(match caller {
            Caller::Anyone => false,
            Caller::EditKey(key) => self.holds_edit_key(&request.id, key).await?,
            Caller::Account(a) => {
                matches!(a.role, Role::Official | Role::Coordinator)
                    && a.may_act_in(&request.municipality)
            }
        })
    }

    async fn private_view(
        &self,
        request: &AidRequest,
        requester: bool,
    ) -> Result<PrivateRequest, DomainError> {
        let contact = match self.store.aid_request_secrets(&request.id).await? {
            Some((Some(sealed), _)) => self
                .contacts
                .open(&sealed, &request.id)
                .and_then(|plain| serde_json::from_slice(&plain).ok()),
            _ => None,
        };
        Ok(PrivateRequest {
            public: self.audience.request_view(request, crate::store::now()),
            at: request.at,
            contact,
            claims: self.store.claims_on(&request.id).await?,
            inbox: requester.then(|| self.audience.requester_inbox(&request.id).to_string()),
        })
    }

    fn seal_contact(&self, contact: &Contact, id: &str) -> Option<Vec<u8>> {
        (!contact.is_empty()).then(|| {
            self.contacts.seal(
                &serde_json::to_vec(contact).expect("contacts serialise"),
                id,
            )
        })
    }

    fn throttle(&self) -> Throttle {
        Throttle {
            max_open: i64::from(self.aid_rules.throttle_open_claims),
            min_ratio: self.aid_rules.throttle_min_ratio,
        }
    }

    fn now_indexed_request(&self, r: &AidRequest) {
        self.aid.upsert_request(r.clone());
        self.live.changed([]);
    }

    fn now_indexed_offer(&self, o: &AidOffer) {
        self.aid.upsert_offer(o.clone());
        self.live.changed([]);
    }
}

/// Posts a request (anyone may; an office or coordinator only in its own
/// municipalities). Answers with the edit key. Posted again with the same
/// `idempotency_key` and content (a retry after a lost answer), it answers
/// the first request again, edit key included, and stores nothing new.
pub async fn post_request(
    s: &Services,
    caller: &Caller,
    new: NewRequest,
    idempotency_key: Option<&str>,
) -> Result<Posted, DomainError> {
    // The content's keyed hash: a retry matches, a different request under
    // the same key does not, and no contact is kept in the clear.
    let body_hash = s.secret.hash(&format!(
        "aid-request:{}",
        serde_json::to_string(&new).expect("requests serialise")
    ));
    if let Some(key) = idempotency_key
        && let Some(first) = answer_again(s, key, &body_hash).await?
    {
        return Ok(first);
    }
    let mut errors = Vec::new();
    let category = category(new.category.as_deref(), &mut errors);
    let quantity = check_items("items", &new.items, &mut errors);
    let urgency = match new.urgency.as_deref() {
        None => Urgency::Normal,
        Some(u) => Urgency::parse(u).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "urgency",
                format!("{u:?} is not one of low, normal, high, critical"),
            ));
            Urgency::Normal
        }),
    };
    let shelter = match new.shelter_id.as_deref() {
        None => None,
        Some(id) => {
            let found = s.index.get(id);
            if found.is_none() {
                errors.push(FieldError::new(
                    "shelter_id",
                    format!("no shelter with id {id}"),
                ));
            }
            found
        }
    };
    let at = place(
        new.lat,
        new.lon,
        shelter.as_ref().and_then(|s| s.site.location),
        &mut errors,
    );
    let municipality = match (&new.municipality, &shelter) {
        (_, Some(shelter)) => Some(shelter.site.municipality.clone()),
        (Some(code), None) => match MunicipalityCode::parse(code) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(FieldError::new("municipality", e.to_string()));
                None
            }
        },
        (None, None) => {
            errors.push(FieldError::new(
                "municipality",
                "required (the JIS code of where help is needed), unless a shelter_id is given",
            ));
            None
        }
    };
    let note = check_note(new.note.as_deref(), &mut errors);
    let contact = check_contact(new.contact, &mut errors);
    let (Some(category), Some(at), Some(municipality)) = (category, at, municipality) else {
        return Err(DomainError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    if let Some(a) = caller.account()
        && a.role != Role::Volunteer
        && !a.may_act_in(&municipality)
    {
        return Err(DomainError::Forbidden(format!(
            "this token may post for municipalities {}, not {municipality}",
            codes(&a.municipalities)
        )));
    }
    let now = crate::store::now();
    let actor = caller.actor();
    let id = uuid::Uuid::now_v7().to_string();
    let request = AidRequest {
        id: id.clone(),
        municipality,
        category,
        items: tidy_items(new.items),
        quantity,
        claimed: 0,
        urgency,
        at,
        shelter_id: shelter.map(|s| s.site.id.clone()),
        note,
        posted_by: actor.display_name(),
        status: RequestStatus::Open,
        hidden: false,
        created_at: now,
        updated_at: now,
        confirmed_at: now,
        confirmed_by: actor.display_name(),
        version: 0,
    };
    let edit_key = edit_key(s, &id);
    let sealed = contact.as_ref().and_then(|c| s.seal_contact(c, &id));
    let stored = s
        .store
        .insert_aid_request(
            &actor,
            &request,
            sealed,
            &s.secret.hash(&edit_key),
            idempotency_key.map(|k| (k, body_hash.as_str())),
            &s.audience,
        )
        .await;
    if let Err(e) = stored {
        // Two copies of one retry at once: the other stored it first.
        if let Some(key) = idempotency_key
            && let Some(first) = answer_again(s, key, &body_hash).await?
        {
            return Ok(first);
        }
        return Err(e.into());
    }
    s.now_indexed_request(&request);
    posted(s, &request).await
}

/// A request's edit key: derived from the server secret and the id, so a
/// retried post can be answered with it again while only its hash is kept.
fn edit_key(s: &Services, id: &str) -> String {
    format!(
        "{EDIT_KEY_PREFIX}{}",
        s.secret.hash(&format!("edit-key:{id}"))
    )
}

async fn posted(s: &Services, request: &AidRequest) -> Result<Posted, DomainError> {
    let edit_key = edit_key(s, &request.id);
    Ok(Posted {
        edit_link: format!("/aid.html#request={}&key={edit_key}", request.id),
        request: s.private_view(request, true).await?,
        edit_key,
    })
}

/// The first answer to a post under `key`, if there was one with this
/// content; a 422 if the key was used for another request.
async fn answer_again(
    s: &Services,
    key: &str,
    body_hash: &str,
) -> Result<Option<Posted>, DomainError> {
    let Some((first_hash, id)) = s.store.aid_request_by_key(key).await? else {
        return Ok(None);
    };
    if first_hash != body_hash {
        return Err(DomainError::Unusable(vec![FieldError::new(
            "Idempotency-Key",
            "this key was already used for a different request; use a new key for a new request",
        )]));
    }
    let request = s
        .store
        .aid_request(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Some(posted(s, &request).await?))
}

/// A request as the caller may see it; a hidden one only to those entitled.
pub async fn request(s: &Services, caller: &Caller, id: &str) -> Result<RequestView, DomainError> {
    let request = s
        .store
        .aid_request(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if s.entitled(caller, &request).await? {
        let requester = matches!(caller, Caller::EditKey(_));
        return Ok(RequestView::Private(Box::new(
            s.private_view(&request, requester).await?,
        )));
    }
    if matches!(caller, Caller::EditKey(_)) {
        return Err(DomainError::Forbidden(
            "this edit link does not open this request".into(),
        ));
    }
    if request.hidden {
        return Err(not_found(id));
    }
    Ok(RequestView::Public(Box::new(
        s.audience.request_view(&request, crate::store::now()),
    )))
}

/// Changes a request: its requester or the municipality's office or
/// coordinators. Reconfirming, withdrawing and confirming receipt are
/// changes too.
pub async fn patch_request(
    s: &Services,
    caller: &Caller,
    id: &str,
    patch: RequestPatch,
) -> Result<PrivateRequest, DomainError> {
    let current = s
        .store
        .aid_request(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !s.may_edit(caller, &current).await? {
        return Err(DomainError::Forbidden(
            "only the requester (with the edit link) or the municipality's office or coordinators may change a request"
                .into(),
        ));
    }
    let mut errors = Vec::new();
    let quantity = patch
        .items
        .as_ref()
        .map(|items| check_items("items", items, &mut errors));
    let urgency = patch.urgency.as_deref().map(|u| {
        Urgency::parse(u).ok_or_else(|| {
            FieldError::new(
                "urgency",
                format!("{u:?} is not one of low, normal, high, critical"),
            )
        })
    });
    let urgency = match urgency {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        Some(Ok(u)) => Some(u),
        None => None,
    };
    let note = patch
        .note
        .as_deref()
        .map(|n| check_note(Some(n), &mut errors));
    let contact = patch.contact.map(|c| check_contact(Some(c), &mut errors));
    let status = match patch.status.as_deref() {
        None => None,
        Some("withdrawn") => Some(RequestStatus::Withdrawn),
        Some("fulfilled") => Some(RequestStatus::Fulfilled),
        Some(other) => {
            errors.push(FieldError::new(
                "status",
                format!("{other:?}: a request can be set to withdrawn or fulfilled; the others follow from claims"),
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let actor = caller.actor();
    let confirmed_by = actor.display_name();
    let sealed = contact.map(|c| c.and_then(|c| s.seal_contact(&c, id)));
    let action = match status {
        Some(RequestStatus::Withdrawn) => "aid.request.withdraw",
        Some(RequestStatus::Fulfilled) => "aid.request.fulfil",
        _ => "aid.request.update",
    };
    let after = s
        .store
        .change_aid_request(&actor, id, action, &s.audience, |r| {
            if !r.status.is_active() {
                return Err(DomainError::Conflict(format!(
                    "the request is {} and can no longer be changed",
                    r.status.as_str()
                )));
            }
            if let (Some(items), Some(quantity)) = (patch.items, quantity) {
                if quantity < r.claimed {
                    return Err(DomainError::Conflict(format!(
                        "{} units are already claimed; the items cannot add up to fewer",
                        r.claimed
                    )));
                }
                r.items = tidy_items(items);
                r.quantity = quantity;
                r.status = RequestStatus::from_claimed(r.claimed, r.quantity);
            }
            if let Some(u) = urgency {
                r.urgency = u;
            }
            if let Some(note) = note {
                r.note = note;
            }
            match status {
                Some(RequestStatus::Fulfilled) if r.claimed == 0 => {
                    return Err(DomainError::Conflict(
                        "nobody has claimed this request yet: withdraw it if it is no longer needed"
                            .into(),
                    ));
                }
                Some(st) => r.status = st,
                None => {}
            }
            // Any change by its owner says it is still as written.
            r.confirmed_at = crate::store::now();
            r.confirmed_by = confirmed_by;
            Ok(sealed)
        })
        .await
        .map_err(|e| guarded(e, || format!("no aid request with id {id}")))?;
    if after.status == RequestStatus::Fulfilled {
        s.store.mark_claims_received(id).await?;
    }
    s.now_indexed_request(&after);
    let requester = matches!(caller, Caller::EditKey(_));
    s.private_view(&after, requester).await
}

/// Requests near a place, nearest first, from memory.
pub fn requests_near(
    s: &Services,
    at: LatLon,
    radius_m: f64,
    filter: &RequestFilter,
    limit: usize,
) -> Vec<(PublicRequest, f64)> {
    let now = crate::store::now();
    s.aid
        .nearest_requests(at, radius_m, limit, filter)
        .into_iter()
        .map(|(r, d)| (s.audience.request_view(&r, now), d))
        .collect()
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
    let quantity = quantity.unwrap_or(request.quantity - request.claimed);
    if quantity < 1 {
        return Err(DomainError::field(
            "quantity",
            "a whole number of units, at least 1",
        ));
    }
    let due = crate::store::now() + TimeDelta::minutes(i64::from(s.aid_rules.claim_minutes));
    let (claim, request) = s
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
    s.now_indexed_request(&request);
    Ok(ClaimAnswer {
        request: s.private_view(&request, false).await?,
        claim,
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

/// Posts an offer (volunteers and coordinators, in their municipalities).
pub async fn post_offer(
    s: &Services,
    caller: &Caller,
    new: NewOffer,
) -> Result<PublicOffer, DomainError> {
    let account = helper(caller)?;
    let mut errors = Vec::new();
    let category = category(new.category.as_deref(), &mut errors);
    let quantity = check_items("items", &new.items, &mut errors);
    let at = place(new.lat, new.lon, None, &mut errors);
    let municipality = match new.municipality.as_deref() {
        None if account.municipalities.len() == 1 => Some(account.municipalities[0].clone()),
        None => {
            errors.push(FieldError::new(
                "municipality",
                "required: this token acts in several municipalities",
            ));
            None
        }
        Some(code) => match MunicipalityCode::parse(code) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(FieldError::new("municipality", e.to_string()));
                None
            }
        },
    };
    let reach_m = check_reach(new.reach_m.unwrap_or(5_000.0), &mut errors);
    if let (Some(from), Some(until)) = (new.available_from, new.available_until)
        && until <= from
    {
        errors.push(FieldError::new(
            "available_until",
            "must be after available_from",
        ));
    }
    let note = check_note(new.note.as_deref(), &mut errors);
    let (Some(category), Some(at), Some(municipality)) = (category, at, municipality) else {
        return Err(DomainError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    if !account.may_act_in(&municipality) {
        return Err(DomainError::Forbidden(format!(
            "this token may offer in municipalities {}, not {municipality}",
            codes(&account.municipalities)
        )));
    }
    let now = crate::store::now();
    let actor = caller.actor();
    let offer = AidOffer {
        id: uuid::Uuid::now_v7().to_string(),
        municipality,
        category,
        items: tidy_items(new.items),
        quantity,
        at,
        reach_m,
        available_from: new.available_from,
        available_until: new.available_until,
        note,
        account_id: account.id,
        posted_by: actor.display_name(),
        status: OfferStatus::Open,
        hidden: false,
        created_at: now,
        updated_at: now,
        confirmed_at: now,
        confirmed_by: actor.display_name(),
        version: 0,
    };
    s.store
        .insert_aid_offer(&actor, &offer, &s.audience)
        .await?;
    s.now_indexed_offer(&offer);
    Ok(s.audience.offer_view(&offer, now))
}

/// An offer's holder (or its coordinator's municipality's office or
/// coordinators) changes, reconfirms or withdraws it.
pub async fn patch_offer(
    s: &Services,
    caller: &Caller,
    id: &str,
    patch: OfferPatch,
) -> Result<PublicOffer, DomainError> {
    let account = helper(caller)?;
    let mut errors = Vec::new();
    let quantity = patch
        .items
        .as_ref()
        .map(|items| check_items("items", items, &mut errors));
    let reach = patch.reach_m.map(|r| check_reach(r, &mut errors));
    let note = patch
        .note
        .as_deref()
        .map(|n| check_note(Some(n), &mut errors));
    let withdraw = match patch.status.as_deref() {
        None => false,
        Some("withdrawn") => true,
        Some(other) => {
            errors.push(FieldError::new(
                "status",
                format!("{other:?}: an offer can only be set to withdrawn"),
            ));
            false
        }
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let actor = caller.actor();
    let by = actor.display_name();
    let after = s
        .store
        .change_aid_offer(&actor, id, "aid.offer.update", &s.audience, |o| {
            let overseer = matches!(account.role, Role::Official | Role::Coordinator)
                && account.may_act_in(&o.municipality);
            if o.account_id != account.id && !overseer {
                return Err(DomainError::Forbidden(
                    "only the offer's holder or the municipality's office or coordinators may change it"
                        .into(),
                ));
            }
            if o.status != OfferStatus::Open {
                return Err(DomainError::Conflict("the offer was withdrawn".into()));
            }
            if let (Some(items), Some(quantity)) = (patch.items, quantity) {
                o.items = tidy_items(items);
                o.quantity = quantity;
            }
            if let Some(r) = reach {
                o.reach_m = r;
            }
            if let Some(until) = patch.available_until {
                o.available_until = Some(until);
            }
            if let Some(note) = note {
                o.note = note;
            }
            if withdraw {
                o.status = OfferStatus::Withdrawn;
            }
            o.confirmed_at = crate::store::now();
            o.confirmed_by = by;
            Ok(())
        })
        .await
        .map_err(|e| guarded(e, || format!("no aid offer with id {id}")))?;
    s.now_indexed_offer(&after);
    Ok(s.audience.offer_view(&after, crate::store::now()))
}

/// An offer, public.
pub async fn offer(s: &Services, id: &str) -> Result<PublicOffer, DomainError> {
    let offer = s
        .store
        .aid_offer(id)
        .await?
        .filter(|o| !o.hidden)
        .ok_or_else(|| DomainError::NotFound(format!("no aid offer with id {id}")))?;
    Ok(s.audience.offer_view(&offer, crate::store::now()))
}

/// Offers near a place, nearest first, from memory.
pub fn offers_near(
    s: &Services,
    at: LatLon,
    radius_m: f64,
    categories: &[Category],
    limit: usize,
) -> Vec<(PublicOffer, f64)> {
    let now = crate::store::now();
    s.aid
        .nearest_offers(at, radius_m, limit, categories)
        .into_iter()
        .map(|(o, d)| (s.audience.offer_view(&o, now), d))
        .collect()
}

/// The offers that fit a request best.
pub async fn matches_for_request(
    s: &Services,
    id: &str,
    limit: usize,
) -> Result<OfferMatches, DomainError> {
    let request = match s.aid.request(id) {
        Some(r) => r,
        None => Arc::new(
            s.store
                .aid_request(id)
                .await?
                .filter(|r| !r.hidden)
                .ok_or_else(|| not_found(id))?,
        ),
    };
    let now = crate::store::now();
    let matches = s
        .aid
        .offers_for(&request, now, limit)
        .into_iter()
        .map(|(o, score, d)| Match {
            record: s.audience.offer_view(&o, now),
            score,
            distance_m: d,
        })
        .collect();
    Ok(OfferMatches { matches })
}

/// The open requests an offer fits best.
pub async fn matches_for_offer(
    s: &Services,
    id: &str,
    limit: usize,
) -> Result<RequestMatches, DomainError> {
    let offer = match s.aid.offer(id) {
        Some(o) => o,
        None => Arc::new(
            s.store
                .aid_offer(id)
                .await?
                .filter(|o| !o.hidden)
                .ok_or_else(|| DomainError::NotFound(format!("no aid offer with id {id}")))?,
        ),
    };
    let now = crate::store::now();
    let matches = s
        .aid
        .requests_for(&offer, now, limit)
        .into_iter()
        .map(|(r, score, d)| Match {
            record: s.audience.request_view(&r, now),
            score,
            distance_m: d,
        })
        .collect();
    Ok(RequestMatches { matches })
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

/// A coordinator registers a volunteer: a token shown once, and the
/// sign-in link as a QR code for the registration desk. `base` is the
/// service's public address, for the link.
pub async fn register_volunteer(
    s: &Services,
    caller: &Caller,
    name: &str,
    base: &str,
) -> Result<Registered, DomainError> {
    let coordinator = match caller {
        Caller::Account(a) if a.role == Role::Coordinator => a,
        Caller::Account(_) => {
            return Err(DomainError::Forbidden(
                "only a coordinator (a volunteer centre or NPO) registers volunteers".into(),
            ));
        }
        _ => return Err(DomainError::Unauthorized),
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::field("name", "1 to 100 characters"));
    }
    let (volunteer, token) = crate::auth::create_account(
        &s.store,
        &s.secret,
        &crate::store::NewAccount {
            name,
            role: Role::Volunteer,
            org: coordinator.org.as_deref().or(Some(&coordinator.name)),
            municipalities: &coordinator.municipalities,
            coordinator: Some(coordinator.id),
        },
    )
    .await?;
    let sign_in_link = format!(
        "{}/volunteer.html#token={token}",
        base.trim_end_matches('/')
    );
    let qr_svg = qrcode::QrCode::new(sign_in_link.as_bytes())
        .map_err(|e| DomainError::Store(anyhow::anyhow!("QR code: {e}").into()))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok(Registered {
        volunteer,
        token,
        sign_in_link,
        qr_svg,
    })
}

/// A coordinator's volunteers.
pub async fn volunteers(s: &Services, caller: &Caller) -> Result<Vec<Account>, DomainError> {
    let coordinator = coordinator(caller)?;
    Ok(s.store.volunteers_of(coordinator.id).await?)
}

/// A coordinator suspends (or reinstates) one of its volunteers.
pub async fn suspend_volunteer(
    s: &Services,
    caller: &Caller,
    id: i64,
    suspended: bool,
) -> Result<Account, DomainError> {
    let coordinator = coordinator(caller)?;
    let volunteer = s
        .store
        .account(id)
        .await?
        .filter(|v| v.coordinator == Some(coordinator.id))
        .ok_or_else(|| {
            DomainError::NotFound(format!("no volunteer {id} registered by this coordinator"))
        })?;
    s.store.set_suspended(volunteer.id, suspended).await?;
    Ok(s.store.account(id).await?.unwrap_or(volunteer))
}

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

fn helper(caller: &Caller) -> Result<&Account, DomainError> {
    match caller {
        Caller::Account(a) if matches!(a.role, Role::Volunteer | Role::Coordinator) => Ok(a),
        Caller::Account(_) => Err(DomainError::Forbidden(
            "only volunteers and coordinators offer and claim".into(),
        )),
        _ => Err(DomainError::Unauthorized),
    }
}

fn overseer(caller: &Caller) -> Result<&Account, DomainError> {
    match caller {
        Caller::Account(a) if matches!(a.role, Role::Official | Role::Coordinator) => Ok(a),
        Caller::Account(_) => Err(DomainError::Forbidden(
            "only an office or a coordinator moderates".into(),
        )),
        _ => Err(DomainError::Unauthorized),
    }
}

fn coordinator(caller: &Caller) -> Result<&Account, DomainError> {
    match caller {
        Caller::Account(a) if a.role == Role::Coordinator => Ok(a),
        Caller::Account(_) => Err(DomainError::Forbidden(
            "only a coordinator manages volunteers".into(),
        )),
        _ => Err(DomainError::Unauthorized),
    }
}

fn category(code: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Category> {
    match code {
        None => {
            errors.push(FieldError::new(
                "category",
                "required: one of GET /v1/aid/categories",
            ));
            None
        }
        Some(c) => Category::parse(c).or_else(|| {
            errors.push(FieldError::new(
                "category",
                format!(
                    "{c:?} is not a category; use one of {}",
                    Category::ALL.map(Category::as_str).join(", ")
                ),
            ));
            None
        }),
    }
}

/// The point given, else `fallback`; both coordinates or neither.
fn place(
    lat: Option<f64>,
    lon: Option<f64>,
    fallback: Option<LatLon>,
    errors: &mut Vec<FieldError>,
) -> Option<LatLon> {
    match (lat, lon) {
        (Some(lat), Some(lon)) => match LatLon::new(lat, lon) {
            Ok(at) => Some(at),
            Err(e) => {
                let field = if e.starts_with("latitude") {
                    "lat"
                } else {
                    "lon"
                };
                errors.push(FieldError::new(field, e));
                None
            }
        },
        (None, None) if fallback.is_some() => fallback,
        (None, None) => {
            errors.push(FieldError::new(
                "lat",
                "required, with lon: where help is needed",
            ));
            None
        }
        (None, Some(_)) => {
            errors.push(FieldError::new("lat", "required with lon"));
            None
        }
        (Some(_), None) => {
            errors.push(FieldError::new("lon", "required with lat"));
            None
        }
    }
}

fn check_reach(reach_m: f64, errors: &mut Vec<FieldError>) -> f64 {
    if !(reach_m.is_finite() && (100.0..=MAX_REACH_M).contains(&reach_m)) {
        errors.push(FieldError::new(
            "reach_m",
            format!("metres from 100 to {MAX_REACH_M:.0}"),
        ));
    }
    reach_m
}

/// A contact with its parts checked; `None` when it says nothing.
fn check_contact(contact: Option<Contact>, errors: &mut Vec<FieldError>) -> Option<Contact> {
    let contact = contact?;
    let phone = contact
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(p) = phone
        && let Err(e) = Phone::parse(p)
    {
        errors.push(FieldError::new("contact.phone", e.to_string()));
    }
    let text = contact
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > MAX_CONTACT_TEXT) {
        errors.push(FieldError::new(
            "contact.text",
            format!("at most {MAX_CONTACT_TEXT} characters"),
        ));
    }
    let contact = Contact {
        phone: phone.map(str::to_owned),
        text: text.map(str::to_owned),
    };
    (!contact.is_empty()).then_some(contact)
}

fn codes(municipalities: &[MunicipalityCode]) -> String {
    municipalities
        .iter()
        .map(MunicipalityCode::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound(format!("no aid request with id {id}"))
}
