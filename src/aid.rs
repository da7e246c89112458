//! Aid as others see it: the public views of requests and offers (their
//! place only as the centre of their H3 cell, no contact, freshness), and
//! the private inboxes — live channels whose names only their owner can
//! know, derived from the server secret — where requesters and volunteers
//! hear of their own claims.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use h3o::{LatLng, Resolution};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Secret;
use crate::domain::aid::{Category, Item, RequestStatus, Urgency};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::live::channel::Channel;
use crate::store::{AidOffer, AidRequest, OfferStatus};

/// The cell whose centre stands for a record's place in public: about
/// 5 km², enough to find the area, not the house.
const PUBLIC_RESOLUTION: Resolution = Resolution::Seven;

/// The contact of a request: sealed at rest, shown only to those entitled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub phone: Option<String>,
    /// Free text: "ask at the reception of 七尾小学校", a LINE id…
    pub text: Option<String>,
}

impl Contact {
    pub fn is_empty(&self) -> bool {
        self.phone.is_none() && self.text.is_none()
    }
}

/// A request as anyone may see it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PublicRequest {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub category: Category,
    pub items: Vec<Item>,
    pub quantity: i32,
    pub claimed: i32,
    /// What nobody has claimed yet.
    pub remaining: i32,
    pub urgency: Urgency,
    /// The centre of the request's H3 cell (resolution 7), not its point.
    pub place: LatLon,
    /// The `cell:` channel it is published on.
    pub cell: String,
    pub shelter_id: Option<String>,
    pub note: Option<String>,
    pub posted_by: String,
    pub status: RequestStatus,
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: String,
    /// Not reconfirmed for longer than requests stay fresh.
    pub stale: bool,
}

/// An offer as anyone may see it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PublicOffer {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub category: Category,
    pub items: Vec<Item>,
    pub quantity: i32,
    /// The centre of the offer's H3 cell (resolution 7).
    pub place: LatLon,
    pub cell: String,
    pub reach_m: f64,
    pub available_from: Option<DateTime<Utc>>,
    pub available_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub posted_by: String,
    pub status: OfferStatus,
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: String,
    pub stale: bool,
}

/// How long records stay fresh, and the key inbox names derive from.
#[derive(Clone)]
pub struct AidAudience {
    secret: Arc<Secret>,
    pub request_stale_after: TimeDelta,
    pub offer_stale_after: TimeDelta,
}

impl AidAudience {
    pub fn new(
        secret: Arc<Secret>,
        request_stale_after: TimeDelta,
        offer_stale_after: TimeDelta,
    ) -> Self {
        Self {
            secret,
            request_stale_after,
            offer_stale_after,
        }
    }

    /// The requester's private channel for one request.
    pub fn requester_inbox(&self, request_id: &str) -> Channel {
        self.inbox(&format!("request:{request_id}"))
    }

    /// A volunteer's (or coordinator's) private channel.
    pub fn account_inbox(&self, account_id: i64) -> Channel {
        self.inbox(&format!("account:{account_id}"))
    }

    fn inbox(&self, owner: &str) -> Channel {
        let hash = self.secret.hash(&format!("inbox:{owner}"));
        Channel::Inbox(hash[..32].to_owned())
    }

    pub fn request_view(&self, r: &AidRequest, now: DateTime<Utc>) -> PublicRequest {
        let (place, cell) = public_place(r.at);
        PublicRequest {
            id: r.id.clone(),
            municipality: r.municipality.clone(),
            category: r.category,
            items: r.items.clone(),
            quantity: r.quantity,
            claimed: r.claimed,
            remaining: r.quantity - r.claimed,
            urgency: r.urgency,
            place,
            cell,
            shelter_id: r.shelter_id.clone(),
            note: r.note.clone(),
            posted_by: r.posted_by.clone(),
            status: r.status,
            hidden: r.hidden,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            confirmed_by: r.confirmed_by.clone(),
            stale: r.status.is_active() && now - r.confirmed_at > self.request_stale_after,
        }
    }

    pub fn offer_view(&self, o: &AidOffer, now: DateTime<Utc>) -> PublicOffer {
        let (place, cell) = public_place(o.at);
        PublicOffer {
            id: o.id.clone(),
            municipality: o.municipality.clone(),
            category: o.category,
            items: o.items.clone(),
            quantity: o.quantity,
            place,
            cell,
            reach_m: o.reach_m,
            available_from: o.available_from,
            available_until: o.available_until,
            note: o.note.clone(),
            posted_by: o.posted_by.clone(),
            status: o.status,
            hidden: o.hidden,
            created_at: o.created_at,
            updated_at: o.updated_at,
            confirmed_at: o.confirmed_at,
            confirmed_by: o.confirmed_by.clone(),
            stale: o.status == OfferStatus::Open && now - o.confirmed_at > self.offer_stale_after,
        }
    }
}

/// The centre of the point's public cell, and that cell's channel name.
pub fn public_place(at: LatLon) -> (LatLon, String) {
    let cell = LatLng::new(at.lat, at.lon)
        .expect("LatLon is validated to finite degrees")
        .to_cell(PUBLIC_RESOLUTION);
    let centre = LatLng::from(cell);
    let place = LatLon::new(centre.lat(), centre.lng()).expect("a cell centre is on Earth");
    (place, Channel::cell_at(at).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_place_is_the_cell_centre_and_inboxes_are_unguessable() {
        let at = LatLon::new(37.0432, 136.9674).unwrap();
        let (place, cell) = public_place(at);
        assert_ne!(place, at);
        assert_eq!(cell, "cell:872e713a0ffffff");
        // Every point of the cell maps to the same public place.
        let (nearby, _) = public_place(LatLon::new(37.0433, 136.9675).unwrap());
        assert_eq!(place, nearby);

        let audience = AidAudience::new(
            Arc::new(Secret::new(vec![7; 32])),
            TimeDelta::hours(24),
            TimeDelta::hours(72),
        );
        let a = audience.requester_inbox("r1").to_string();
        let b = audience.requester_inbox("r2").to_string();
        assert!(a.starts_with("inbox:") && a.len() == "inbox:".len() + 32);
        assert_ne!(a, b);
        let other_server = AidAudience::new(
            Arc::new(Secret::new(vec![8; 32])),
            TimeDelta::hours(24),
            TimeDelta::hours(72),
        );
        assert_ne!(other_server.requester_inbox("r1").to_string(), a);
    }
}
