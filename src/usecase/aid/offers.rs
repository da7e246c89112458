//! Offers, and the ranked matches between offers and requests.

use super::*;

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
