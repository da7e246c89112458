//! Aid: residents and offices ask, volunteers offer, claim and deliver,
//! coordinators register volunteers and moderate. Who sees a requester's
//! contact is decided here and nowhere else ([`Services::entitled`]).
//!
//! Here: who is calling ([`Caller`]), who may see and change a request, and
//! the checks the parts share. The parts: `requests`, `claims`, `offers`
//! (and matching), `moderation` (reports and decisions), `volunteers`,
//! `clock` (lapses, reminders, expiry).

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

mod claims;
mod clock;
mod moderation;
mod offers;
mod requests;
mod volunteers;

pub use claims::*;
pub use clock::*;
pub use moderation::*;
pub use offers::*;
pub use requests::*;
pub use volunteers::*;

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
            Some((sealed, _)) => self.open_contact(sealed.as_deref(), &request.id),
            None => None,
        };
        Ok(PrivateRequest {
            public: self.audience.request_view(request, crate::store::now()),
            at: request.at,
            contact,
            claims: self.store.claims_on(&request.id).await?,
            inbox: requester.then(|| self.audience.requester_inbox(&request.id).to_string()),
        })
    }

    /// A request's contact from its sealed form (none if it cannot be opened).
    fn open_contact(&self, sealed: Option<&[u8]>, id: &str) -> Option<Contact> {
        self.contacts
            .open(sealed?, id)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
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
