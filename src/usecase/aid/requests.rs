//! Requests for help: posted by anyone (an edit key for the requester), read
//! public or private as the caller is entitled, changed, listed near a place.

use super::*;

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
        let mut view = s.private_view(&request, requester).await?;
        // A claimant sees their own claims; the requester and the
        // municipality's office and coordinators see them all.
        if let Caller::Account(a) = caller
            && !(matches!(a.role, Role::Official | Role::Coordinator)
                && a.may_act_in(&request.municipality))
        {
            view.claims.retain(|c| c.account_id == a.id);
        }
        return Ok(RequestView::Private(Box::new(view)));
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
