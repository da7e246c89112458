//! Active aid requests and open offers in memory, for "near me" and for
//! matching, kept in step with every committed change (locally at once,
//! on other instances through `aid.changed` on the registry channel).
//!
//! A request is indexed at its public place (the centre of its H3 cell), so
//! nothing that answers from this index — order included — tells more
//! about where someone lives than the public view does. Matching measures
//! reach from there too: at most about a kilometre off.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use geo::{Distance, Haversine, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::aid::public_place;
use crate::domain::aid::{Category, Pairing, RequestStatus, match_score};
use crate::domain::shelter::LatLon;
use crate::geoindex::{chord_of, unit_vector};
use crate::store::{AidOffer, AidRequest, OfferStatus};

type Entry = GeomWithData<[f64; 3], Arc<str>>;

/// Farthest an offer may reach (metres).
pub const MAX_REACH_M: f64 = 100_000.0;

/// A record the index holds.
trait Indexed {
    fn id(&self) -> &str;
    /// Where it is matched from.
    fn place(&self) -> LatLon;
    /// Raised by every committed change.
    fn version(&self) -> i64;
    /// Still to be found by others.
    fn listed(&self) -> bool;
}

impl Indexed for AidRequest {
    fn id(&self) -> &str {
        &self.id
    }
    fn place(&self) -> LatLon {
        public_place(self.at).0
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn listed(&self) -> bool {
        self.status.is_active() && !self.hidden
    }
}

impl Indexed for AidOffer {
    fn id(&self) -> &str {
        &self.id
    }
    fn place(&self) -> LatLon {
        public_place(self.at).0
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn listed(&self) -> bool {
        self.status == OfferStatus::Open && !self.hidden
    }
}

/// Records of one kind by id, and an R-tree of their places.
struct Points<T> {
    tree: RTree<Entry>,
    by_id: HashMap<Arc<str>, (Arc<T>, LatLon)>,
    /// The version at which each record left the index: a reload of an
    /// older state that arrives late must not bring it back.
    gone: HashMap<Arc<str>, i64>,
}

impl<T> Default for Points<T> {
    fn default() -> Self {
        Self {
            tree: RTree::new(),
            by_id: HashMap::new(),
            gone: HashMap::new(),
        }
    }
}

impl<T: Indexed> Points<T> {
    fn upsert(&mut self, record: T) {
        let id: Arc<str> = Arc::from(record.id());
        let version = record.version();
        let newer_held = self
            .by_id
            .get(&id)
            .map(|(held, _)| held.version())
            .or_else(|| self.gone.get(&id).copied())
            .is_some_and(|held| held > version);
        if newer_held {
            return;
        }
        if let Some((_, place)) = self.by_id.remove(&id) {
            self.tree
                .remove(&Entry::new(unit_vector(place), id.clone()));
        }
        if record.listed() {
            let place = record.place();
            self.tree.insert(Entry::new(unit_vector(place), id.clone()));
            self.by_id.insert(id.clone(), (Arc::new(record), place));
            self.gone.remove(&id);
        } else {
            self.gone.insert(id, version);
        }
    }

    /// Nearest first, with the haversine distance, until `radius_m`.
    fn near(&self, at: LatLon, radius_m: f64) -> impl Iterator<Item = (&Arc<T>, f64)> {
        let origin = Point::new(at.lon, at.lat);
        let max_chord = chord_of(radius_m);
        let query = unit_vector(at);
        self.tree
            .nearest_neighbor_iter_with_distance_2(&query)
            .take_while(move |(_, d2)| d2.sqrt() <= max_chord)
            .filter_map(move |(e, _)| {
                let (record, place) = self.by_id.get(&e.data)?;
                let d = Haversine.distance(origin, Point::new(place.lon, place.lat));
                Some((record, d))
            })
    }
}

/// A cheap handle; clones share one index.
#[derive(Clone, Default)]
pub struct AidIndex {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    requests: Points<AidRequest>,
    offers: Points<AidOffer>,
    /// The longest reach of any offer listed since the index was (re)built:
    /// no offer farther than this from a request can match it, so matching
    /// walks no farther (1,200 candidates instead of 16,600 within the
    /// 100 km limit, for offers spread like Japan's population).
    longest_reach_m: f64,
}

/// What a volunteer looks for.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Any of these (empty = any).
    pub categories: Vec<Category>,
    /// Any of these (empty = open or partially claimed: what can be claimed).
    pub statuses: Vec<RequestStatus>,
}

impl RequestFilter {
    fn accepts(&self, r: &AidRequest) -> bool {
        (self.categories.is_empty() || self.categories.contains(&r.category))
            && if self.statuses.is_empty() {
                matches!(
                    r.status,
                    RequestStatus::Open | RequestStatus::PartiallyClaimed
                )
            } else {
                self.statuses.contains(&r.status)
            }
    }
}

impl AidIndex {
    pub fn new(requests: Vec<AidRequest>, offers: Vec<AidOffer>) -> Self {
        let index = Self::default();
        index.replace_all(requests, offers);
        index
    }

    /// Everything anew (start-up, or after the broker was away).
    pub fn replace_all(&self, requests: Vec<AidRequest>, offers: Vec<AidOffer>) {
        let mut fresh = Inner::default();
        for r in requests {
            fresh.requests.upsert(r);
        }
        for o in offers {
            fresh.longest_reach_m = fresh.longest_reach_m.max(o.reach_m);
            fresh.offers.upsert(o);
        }
        *self.write() = fresh;
    }

    /// A request as committed: listed while active and visible, dropped after.
    pub fn upsert_request(&self, request: AidRequest) {
        self.write().requests.upsert(request);
    }

    pub fn upsert_offer(&self, offer: AidOffer) {
        let mut inner = self.write();
        inner.longest_reach_m = inner.longest_reach_m.max(offer.reach_m.min(MAX_REACH_M));
        inner.offers.upsert(offer);
    }

    pub fn request(&self, id: &str) -> Option<Arc<AidRequest>> {
        self.read().requests.by_id.get(id).map(|(r, _)| r.clone())
    }

    pub fn offer(&self, id: &str) -> Option<Arc<AidOffer>> {
        self.read().offers.by_id.get(id).map(|(o, _)| o.clone())
    }

    /// (requests, offers) listed.
    pub fn len(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.requests.by_id.len(), inner.offers.by_id.len())
    }

    /// Up to `limit` requests passing `filter` within `radius_m`, nearest first.
    pub fn nearest_requests(
        &self,
        at: LatLon,
        radius_m: f64,
        limit: usize,
        filter: &RequestFilter,
    ) -> Vec<(Arc<AidRequest>, f64)> {
        let inner = self.read();
        inner
            .requests
            .near(at, radius_m)
            .filter(|(r, _)| filter.accepts(r))
            .take(limit)
            .map(|(r, d)| (r.clone(), d))
            .collect()
    }

    /// Up to `limit` open offers within `radius_m`, nearest first.
    pub fn nearest_offers(
        &self,
        at: LatLon,
        radius_m: f64,
        limit: usize,
        categories: &[Category],
    ) -> Vec<(Arc<AidOffer>, f64)> {
        let inner = self.read();
        inner
            .offers
            .near(at, radius_m)
            .filter(|(o, _)| categories.is_empty() || categories.contains(&o.category))
            .take(limit)
            .map(|(o, d)| (o.clone(), d))
            .collect()
    }

    /// The offers that fit `request` best (score, distance), best first:
    /// within their own reach, available now, by [`match_score`].
    pub fn offers_for(
        &self,
        request: &AidRequest,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Vec<(Arc<AidOffer>, f64, f64)> {
        let inner = self.read();
        let mut found: Vec<(Arc<AidOffer>, f64, f64)> = inner
            .offers
            .near(request.place(), inner.longest_reach_m.min(MAX_REACH_M))
            .filter(|(o, _)| available(o, now))
            .filter_map(|(o, d)| {
                let score = match_score(&pairing(request, o, d, now))?;
                Some((o.clone(), score, d))
            })
            .collect();
        best_first(&mut found, limit);
        found
    }

    /// The open requests `offer` fits best (score, distance), best first.
    pub fn requests_for(
        &self,
        offer: &AidOffer,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Vec<(Arc<AidRequest>, f64, f64)> {
        let inner = self.read();
        let mut found: Vec<(Arc<AidRequest>, f64, f64)> = inner
            .requests
            .near(offer.place(), offer.reach_m.min(MAX_REACH_M))
            .filter(|(r, _)| RequestFilter::default().accepts(r))
            .filter_map(|(r, d)| {
                let score = match_score(&pairing(r, offer, d, now))?;
                Some((r.clone(), score, d))
            })
            .collect();
        best_first(&mut found, limit);
        found
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Each write is one map and tree update: a panic cannot leave a
        // half-made change readers would see, so poison is ignored.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn available(offer: &AidOffer, now: DateTime<Utc>) -> bool {
    offer.available_until.is_none_or(|until| until > now)
}

fn pairing(request: &AidRequest, offer: &AidOffer, distance_m: f64, now: DateTime<Utc>) -> Pairing {
    Pairing {
        request_category: request.category,
        offer_category: offer.category,
        distance_m,
        reach_m: offer.reach_m,
        remaining: request.quantity - request.claimed,
        offered: offer.quantity,
        urgency: request.urgency,
        age_hours: (now - request.created_at).num_seconds() as f64 / 3600.0,
    }
}

/// Highest score first; ties nearest first; then cut to `limit`.
fn best_first<T>(found: &mut Vec<(T, f64, f64)>, limit: usize) {
    found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.total_cmp(&b.2)));
    found.truncate(limit);
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::aid::{Item, Urgency};
    use crate::domain::municipality::MunicipalityCode;

    fn request(id: &str, lat: f64, lon: f64, category: Category, version: i64) -> AidRequest {
        let now = Utc::now();
        AidRequest {
            id: id.into(),
            municipality: MunicipalityCode::parse("172022").unwrap(),
            category,
            items: vec![Item {
                name: "x".into(),
                quantity: 10,
                unit: String::new(),
            }],
            quantity: 10,
            claimed: 0,
            urgency: Urgency::Normal,
            at: LatLon::new(lat, lon).unwrap(),
            shelter_id: None,
            note: None,
            posted_by: "resident".into(),
            status: RequestStatus::Open,
            hidden: false,
            created_at: now - TimeDelta::hours(2),
            updated_at: now,
            confirmed_at: now,
            confirmed_by: "resident".into(),
            version,
        }
    }

    fn offer(id: &str, lat: f64, lon: f64, reach_m: f64) -> AidOffer {
        let now = Utc::now();
        AidOffer {
            id: id.into(),
            municipality: MunicipalityCode::parse("172022").unwrap(),
            category: Category::Water,
            items: Vec::new(),
            quantity: 10,
            at: LatLon::new(lat, lon).unwrap(),
            reach_m,
            available_from: None,
            available_until: None,
            note: None,
            account_id: 1,
            posted_by: "v".into(),
            status: OfferStatus::Open,
            hidden: false,
            created_at: now,
            updated_at: now,
            confirmed_at: now,
            confirmed_by: "v".into(),
            version: 0,
        }
    }

    #[test]
    fn nearest_first_by_category_and_only_what_can_be_claimed() {
        let index = AidIndex::new(
            vec![
                request("far", 37.20, 136.97, Category::Water, 0),
                request("near", 37.05, 136.97, Category::Water, 0),
                request("food", 37.04, 136.97, Category::Food, 0),
            ],
            Vec::new(),
        );
        let at = LatLon::new(37.04, 136.97).unwrap();
        let water = RequestFilter {
            categories: vec![Category::Water],
            statuses: Vec::new(),
        };
        let found: Vec<_> = index
            .nearest_requests(at, 50_000.0, 10, &water)
            .into_iter()
            .map(|(r, _)| r.id.clone())
            .collect();
        assert_eq!(found, ["near", "far"]);
        let within: Vec<_> = index
            .nearest_requests(at, 5_000.0, 10, &RequestFilter::default())
            .into_iter()
            .map(|(r, _)| r.id.clone())
            .collect();
        assert_eq!(within, ["food", "near"], "the radius is kept");
        let mut claimed = request("near", 37.05, 136.97, Category::Water, 1);
        claimed.claimed = 10;
        claimed.status = RequestStatus::Claimed;
        index.upsert_request(claimed);
        let found = index.nearest_requests(at, 50_000.0, 10, &water);
        assert_eq!(found.len(), 1, "a claimed request is not offered again");
    }

    #[test]
    fn an_older_state_arriving_late_does_not_win() {
        let index = AidIndex::default();
        let mut done = request("r", 37.05, 136.97, Category::Water, 3);
        done.status = RequestStatus::Fulfilled;
        index.upsert_request(request("r", 37.05, 136.97, Category::Water, 2));
        index.upsert_request(done);
        // A reload started before the fulfilment lands after it.
        index.upsert_request(request("r", 37.05, 136.97, Category::Water, 2));
        assert!(index.request("r").is_none());
        assert_eq!(index.len(), (0, 0));
    }

    #[test]
    fn offers_are_matched_within_their_own_reach() {
        let index = AidIndex::new(
            Vec::new(),
            vec![
                offer("short", 37.10, 136.97, 2_000.0),
                offer("long", 37.10, 136.97, 20_000.0),
                offer("close", 37.045, 136.97, 3_000.0),
            ],
        );
        let r = request("r", 37.04, 136.97, Category::Water, 0);
        let ranked: Vec<_> = index
            .offers_for(&r, Utc::now(), 10)
            .into_iter()
            .map(|(o, _, _)| o.id.clone())
            .collect();
        assert_eq!(ranked, ["close", "long"]);
        let for_long: Vec<_> = index
            .requests_for(&offer("long", 37.10, 136.97, 20_000.0), Utc::now(), 10)
            .into_iter()
            .map(|(r, _, _)| r.id.clone())
            .collect();
        assert!(for_long.is_empty(), "the request is not in the index");
        index.upsert_request(r);
        let for_short = index.requests_for(&offer("short", 37.10, 136.97, 2_000.0), Utc::now(), 10);
        assert!(for_short.is_empty(), "out of the short offer's reach");
        // An offer reaching farther than any before, added later, is found:
        // the walk goes as far as the longest reach listed.
        index.upsert_offer(offer("far", 37.40, 136.97, 50_000.0));
        let ranked: Vec<_> = index
            .offers_for(
                &request("r", 37.04, 136.97, Category::Water, 0),
                Utc::now(),
                10,
            )
            .into_iter()
            .map(|(o, _, _)| o.id.clone())
            .collect();
        assert!(ranked.contains(&"far".to_owned()), "{ranked:?}");
    }
}
