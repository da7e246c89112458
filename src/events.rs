//! Typed live events: every kind of change anpi tells subscribers about,
//! where each goes, and its one serialisation. Changes write these into the
//! outbox in their own transaction (`store::outbox`); the relay publishes
//! them (`live::relay`); tests and the replay read the same shapes.
//!
//! The wire format is in `docs/live-protocol.md`: an event frame carries
//! `kind` and `data`; `data` is what [`LiveEvent::data`] serialises.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aid::{AidAudience, PublicOffer, PublicRequest};
use crate::domain::person::Status;
use crate::domain::shelter::Shelter;
use crate::domain::supply::SupplyPoint;
use crate::live::channel::Channel;
use crate::stats::IncidentStats;
use crate::store::{AidOffer, AidRequest, Announcement, Claim};
use crate::supply::SupplyView;

/// Ids per `registry.changed` event: a national import changes 100,000.
const REGISTRY_CHUNK: usize = 500;

/// One change, as subscribers see it.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    /// A shelter's registry entry or live state changed (`shelter.updated`).
    ShelterUpdated(Box<Shelter>),
    /// Shelters changed: every instance reloads them into its index
    /// (`registry.changed`, internal).
    RegistryChanged { ids: Vec<String> },
    /// Someone checked in, or a PFIF note about them arrived (`checkin`).
    Checkin(CheckinEvent),
    /// An incident's counts (`incident.stats`).
    IncidentStats(Box<IncidentStats>),
    /// An office told its municipality something (`announcement`).
    Announcement(Announcement),
    /// An aid request changed: its public view (`aid.request`).
    AidRequest(Box<PublicRequest>),
    /// An aid offer changed: its public view (`aid.offer`).
    AidOffer(Box<PublicOffer>),
    /// Open requests per category in a municipality (`aid.counts`).
    AidCounts(AidCounts),
    /// A claim changed, told to the claimant's and requester's inboxes
    /// (`aid.claim`).
    AidClaim(Box<ClaimEvent>),
    /// A record went stale: its owner is asked to reconfirm it, on their
    /// inbox (`aid.reconfirm`).
    AidReconfirm(Reminder),
    /// Aid records changed: every instance reloads them into its matching
    /// index (`aid.changed`, internal).
    AidChanged {
        requests: Vec<String>,
        offers: Vec<String>,
    },
    /// A supply point changed: what every reader sees (`supply.point`).
    SupplyPoint(Box<SupplyView>),
    /// Supply points changed: every instance reloads them into its index
    /// (`supply.changed`, internal).
    SupplyChanged { ids: Vec<String> },
}

/// Open requests of a municipality per category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AidCounts {
    pub municipality: String,
    /// Category code → open or partially claimed requests.
    pub open: std::collections::BTreeMap<String, i64>,
}

/// Which record to reconfirm, and since when it was not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reminder {
    /// `request` or `offer`.
    pub kind: &'static str,
    pub id: String,
    pub confirmed_at: DateTime<Utc>,
}

/// A claim and the request it is on (public fields only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimEvent {
    pub claim: Claim,
    pub request: PublicRequest,
}

/// What a watcher of a person learns of one check-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckinEvent {
    pub person_token: String,
    pub name: String,
    pub phone_last4: Option<String>,
    pub statuses: Vec<Status>,
    pub shelter_id: Option<String>,
    /// The shelter's name, so a family's page can say where without asking.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shelter_name: Option<String>,
    /// The person's own message (not shown for household members others reported).
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// For an imported PFIF note: its status and author.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pfif_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub author_name: Option<String>,
}

impl LiveEvent {
    /// The `kind` of its frames.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::ShelterUpdated(_) => "shelter.updated",
            LiveEvent::RegistryChanged { .. } => "registry.changed",
            LiveEvent::Checkin(_) => "checkin",
            LiveEvent::IncidentStats(_) => "incident.stats",
            LiveEvent::Announcement(_) => "announcement",
            LiveEvent::AidRequest(_) => "aid.request",
            LiveEvent::AidOffer(_) => "aid.offer",
            LiveEvent::AidCounts(_) => "aid.counts",
            LiveEvent::AidClaim(_) => "aid.claim",
            LiveEvent::AidReconfirm(_) => "aid.reconfirm",
            LiveEvent::AidChanged { .. } => "aid.changed",
            LiveEvent::SupplyPoint(_) => "supply.point",
            LiveEvent::SupplyChanged { .. } => "supply.changed",
        }
    }

    /// Its `data`, as JSON text.
    pub fn data(&self) -> String {
        let json = match self {
            LiveEvent::ShelterUpdated(s) => serde_json::to_string(s),
            LiveEvent::RegistryChanged { ids } => {
                serde_json::to_string(&serde_json::json!({ "ids": ids }))
            }
            LiveEvent::Checkin(c) => serde_json::to_string(c),
            LiveEvent::IncidentStats(s) => serde_json::to_string(s),
            LiveEvent::Announcement(a) => serde_json::to_string(a),
            LiveEvent::AidRequest(r) => serde_json::to_string(r),
            LiveEvent::AidOffer(o) => serde_json::to_string(o),
            LiveEvent::AidCounts(c) => serde_json::to_string(c),
            LiveEvent::AidClaim(c) => serde_json::to_string(c),
            LiveEvent::AidReconfirm(r) => serde_json::to_string(r),
            LiveEvent::AidChanged { requests, offers } => serde_json::to_string(
                &serde_json::json!({ "requests": requests, "offers": offers }),
            ),
            LiveEvent::SupplyPoint(p) => serde_json::to_string(p),
            LiveEvent::SupplyChanged { ids } => {
                serde_json::to_string(&serde_json::json!({ "ids": ids }))
            }
        };
        json.expect("live events serialise")
    }
}

/// An event and the channel it goes to: one row of the outbox.
#[derive(Clone, Debug)]
pub struct Addressed {
    pub channel: Channel,
    pub event: LiveEvent,
}

impl Addressed {
    fn new(channel: Channel, event: LiveEvent) -> Self {
        Addressed { channel, event }
    }
}

/// Shelters changed: each to its area and its cell, and every instance's
/// index told through `registry`.
pub fn shelters_changed(shelters: &[Shelter]) -> Vec<Addressed> {
    let mut out = Vec::with_capacity(shelters.len() * 2 + 1);
    for s in shelters {
        let event = LiveEvent::ShelterUpdated(Box::new(s.clone()));
        if let Some(at) = s.site.location {
            out.push(Addressed::new(Channel::cell_at(at), event.clone()));
        }
        out.push(Addressed::new(
            Channel::Area(s.site.municipality.clone()),
            event,
        ));
    }
    let ids: Vec<String> = shelters.iter().map(|s| s.site.id.clone()).collect();
    for chunk in ids.chunks(REGISTRY_CHUNK) {
        out.push(Addressed::new(
            Channel::Registry,
            LiveEvent::RegistryChanged {
                ids: chunk.to_vec(),
            },
        ));
    }
    out
}

/// A check-in, to the person's own channel and to each family waiting on a
/// look-up that matches them (`watchers`).
pub fn checked_in(event: CheckinEvent, watchers: &[String]) -> Vec<Addressed> {
    std::iter::once(&event.person_token)
        .chain(watchers)
        .map(|token| {
            Addressed::new(
                Channel::Person(token.clone()),
                LiveEvent::Checkin(event.clone()),
            )
        })
        .collect()
}

/// An incident's counts, on `incident:<id>`.
pub fn stats(incident_id: &str, stats: IncidentStats) -> Addressed {
    Addressed::new(
        Channel::Incident(incident_id.to_owned()),
        LiveEvent::IncidentStats(Box::new(stats)),
    )
}

/// An announcement, on its municipality's `area:` and `notices:` channels.
pub fn announced(announcement: &Announcement) -> Vec<Addressed> {
    let event = LiveEvent::Announcement(announcement.clone());
    vec![
        Addressed::new(
            Channel::Area(announcement.municipality.clone()),
            event.clone(),
        ),
        Addressed::new(Channel::Notices(announcement.municipality.clone()), event),
    ]
}

/// A request changed: its public view to its cell and area, to the
/// requester's inbox and to the inboxes of those holding claims on it; the
/// area's open counts when they changed (given); and every instance's
/// matching index told.
pub fn aid_request_changed(
    request: &AidRequest,
    audience: &AidAudience,
    claimants: &[i64],
    open_counts: Option<Vec<(String, i64)>>,
) -> Vec<Addressed> {
    let event = LiveEvent::AidRequest(Box::new(
        audience.request_view(request, crate::store::now()),
    ));
    let mut out = vec![
        Addressed::new(Channel::cell_at(request.at), event.clone()),
        Addressed::new(Channel::Area(request.municipality.clone()), event.clone()),
        Addressed::new(audience.requester_inbox(&request.id), event.clone()),
    ];
    for id in claimants {
        out.push(Addressed::new(audience.account_inbox(*id), event.clone()));
    }
    if let Some(counts) = open_counts {
        out.push(Addressed::new(
            Channel::Area(request.municipality.clone()),
            LiveEvent::AidCounts(AidCounts {
                municipality: request.municipality.as_str().to_owned(),
                open: counts.into_iter().collect(),
            }),
        ));
    }
    out.push(Addressed::new(
        Channel::Registry,
        LiveEvent::AidChanged {
            requests: vec![request.id.clone()],
            offers: Vec::new(),
        },
    ));
    out
}

/// A claim changed: to its holder's inbox and to the requester's.
pub fn aid_claim_changed(
    claim: &Claim,
    request: &AidRequest,
    audience: &AidAudience,
) -> Vec<Addressed> {
    let event = LiveEvent::AidClaim(Box::new(ClaimEvent {
        claim: claim.clone(),
        request: audience.request_view(request, crate::store::now()),
    }));
    vec![
        Addressed::new(audience.account_inbox(claim.account_id), event.clone()),
        Addressed::new(audience.requester_inbox(&request.id), event),
    ]
}

/// An offer changed: its public view to its cell and area, and every
/// instance's matching index told.
pub fn aid_offer_changed(offer: &AidOffer, audience: &AidAudience) -> Vec<Addressed> {
    let event = LiveEvent::AidOffer(Box::new(audience.offer_view(offer, crate::store::now())));
    vec![
        Addressed::new(Channel::cell_at(offer.at), event.clone()),
        Addressed::new(Channel::Area(offer.municipality.clone()), event),
        Addressed::new(
            Channel::Registry,
            LiveEvent::AidChanged {
                requests: Vec::new(),
                offers: vec![offer.id.clone()],
            },
        ),
    ]
}

/// A record went stale: its owner's inbox asks for a reconfirmation.
pub fn reconfirm(inbox: Channel, reminder: Reminder) -> Addressed {
    Addressed::new(inbox, LiveEvent::AidReconfirm(reminder))
}

/// Supply points changed: each to its cell and area, and every instance's
/// index told through `registry`.
pub fn supply_changed(points: &[SupplyPoint]) -> Vec<Addressed> {
    let now = crate::store::now();
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    for p in points {
        let event = LiveEvent::SupplyPoint(Box::new(SupplyView::of(p, now)));
        out.push(Addressed::new(Channel::cell_at(p.at), event.clone()));
        out.push(Addressed::new(Channel::Area(p.municipality.clone()), event));
    }
    let ids: Vec<String> = points.iter().map(|p| p.id.clone()).collect();
    for chunk in ids.chunks(REGISTRY_CHUNK) {
        out.push(Addressed::new(
            Channel::Registry,
            LiveEvent::SupplyChanged {
                ids: chunk.to_vec(),
            },
        ));
    }
    out
}
