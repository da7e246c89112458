//! The in-memory shelter index: every shelter by id, and an R-tree of those
//! with coordinates, kept in step with every committed write.
//!
//! Points are stored as unit vectors on the sphere (x, y, z). The straight-line
//! (chord) distance between two unit vectors grows with the great-circle
//! distance between them, so the R-tree's Euclidean nearest-neighbour order is
//! exactly the haversine order — no lat/lon distortion near the poles or the
//! antimeridian, and no second sort.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use geo::{Distance, Haversine, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{Hazard, LatLon, Shelter, ShelterStatus};

type Entry = GeomWithData<[f64; 3], Arc<str>>;

/// What a resident or an office asks for; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct ShelterFilter {
    pub hazard: Option<Hazard>,
    /// Any of these statuses (empty = any).
    pub statuses: Vec<ShelterStatus>,
    pub has_room: bool,
    pub municipality: Option<MunicipalityCode>,
}

impl ShelterFilter {
    pub fn accepts(&self, s: &Shelter) -> bool {
        self.hazard.is_none_or(|h| s.site.hazards.contains(h))
            && (self.statuses.is_empty() || self.statuses.contains(&s.live.status))
            && (!self.has_room || s.has_room())
            && self
                .municipality
                .as_ref()
                .is_none_or(|m| *m == s.site.municipality)
    }
}

/// A cheap handle; clones share one index.
#[derive(Clone, Default)]
pub struct ShelterIndex {
    // A std RwLock: readers (every nearest-shelter query) never await while
    // holding it and writers hold it for one map insert and one tree update.
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    tree: RTree<Entry>,
    by_id: HashMap<Arc<str>, Arc<Shelter>>,
}

impl ShelterIndex {
    pub fn new(shelters: impl IntoIterator<Item = Shelter>) -> Self {
        let by_id: HashMap<Arc<str>, Arc<Shelter>> = shelters
            .into_iter()
            .map(|s| (Arc::from(s.site.id.as_str()), Arc::new(s)))
            .collect();
        // Built by insertion, not `RTree::bulk_load`: rstar 0.12's bulk load can
        // leave leaves at different depths, and a later `insert` then panics
        // (georust/rstar#239; our property test found it). Start-up pays a little
        // more; every later upsert stays safe.
        let mut tree = RTree::new();
        for (id, s) in &by_id {
            if let Some(at) = s.site.location {
                tree.insert(Entry::new(unit_vector(at), id.clone()));
            }
        }
        Self {
            inner: Arc::new(RwLock::new(Inner { tree, by_id })),
        }
    }

    /// Adds or replaces a shelter (after its write committed). A state
    /// older than the one held is ignored: a reload started by an earlier
    /// change's `registry` event may finish after a later write was applied.
    pub fn upsert(&self, shelter: Shelter) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id: Arc<str> = Arc::from(shelter.site.id.as_str());
        if let Some(held) = inner.by_id.get(&id)
            && let (Some(held_at), Some(new_at)) = (held.live.updated_at, shelter.live.updated_at)
            && held_at > new_at
        {
            return;
        }
        let new_location = shelter.site.location;
        // None: not indexed before; Some(None): known but without coordinates.
        let old_location = inner.by_id.get(&id).map(|old| old.site.location);
        if old_location != Some(new_location) {
            if let Some(Some(at)) = old_location {
                inner.tree.remove(&Entry::new(unit_vector(at), id.clone()));
            }
            if let Some(at) = new_location {
                inner.tree.insert(Entry::new(unit_vector(at), id.clone()));
            }
        }
        inner.by_id.insert(id, Arc::new(shelter));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Shelter>> {
        self.read().by_id.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `limit` nearest shelters that pass `filter`, nearest first, with
    /// their haversine distance in metres.
    pub fn nearest(
        &self,
        at: LatLon,
        limit: usize,
        filter: &ShelterFilter,
    ) -> Vec<(Arc<Shelter>, f64)> {
        let inner = self.read();
        let origin = Point::new(at.lon, at.lat);
        inner
            .tree
            .nearest_neighbor_iter(&unit_vector(at))
            .filter_map(|e| inner.by_id.get(&e.data))
            .filter(|s| filter.accepts(s))
            .take(limit)
            .map(|s| {
                let loc = s
                    .site
                    .location
                    .expect("only located shelters are in the tree");
                let d = Haversine.distance(origin, Point::new(loc.lon, loc.lat));
                (s.clone(), d)
            })
            .collect()
    }

    /// Every located shelter within `radius_m` of `at` (straight-line on the
    /// sphere), in no particular order.
    pub fn within(&self, at: LatLon, radius_m: f64) -> Vec<Arc<Shelter>> {
        let chord = chord_of(radius_m);
        let inner = self.read();
        inner
            .tree
            .locate_within_distance(unit_vector(at), chord * chord)
            .filter_map(|e| inner.by_id.get(&e.data).cloned())
            .collect()
    }

    /// Replaces the whole content (after the bus was down and writes made on
    /// other instances may have been missed).
    pub fn replace_all(&self, shelters: impl IntoIterator<Item = Shelter>) {
        let fresh = Self::new(shelters);
        let fresh = std::mem::take(&mut *fresh.inner.write().unwrap_or_else(|e| e.into_inner()));
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Shelters passing `filter`, ordered by id (a stable order for paging).
    pub fn list(&self, filter: &ShelterFilter) -> Vec<Arc<Shelter>> {
        let inner = self.read();
        let mut all: Vec<_> = inner
            .by_id
            .values()
            .filter(|s| filter.accepts(s))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.site.id.cmp(&b.site.id));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-written in a
        // way readers would notice (each write is one insert), so poison is ignored.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The straight-line distance between unit vectors `radius_m` apart on the
/// sphere (a great-circle distance as the R-tree measures it).
pub(crate) fn chord_of(radius_m: f64) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    2.0 * (radius_m / (2.0 * EARTH_RADIUS_M))
        .min(std::f64::consts::FRAC_PI_2)
        .sin()
}

pub(crate) fn unit_vector(p: LatLon) -> [f64; 3] {
    let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}
