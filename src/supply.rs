//! Supply points in memory, nearest first (an R-tree on the sphere, as the
//! shelter index), kept in step with every committed write — on this
//! instance at once, on others through `supply.changed` on the registry
//! channel — and the view every reader gets: whether it hands out now, and
//! whether what it says is too old to trust.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use geo::{Distance, Haversine, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::domain::supply::{SupplyKind, SupplyPoint, SupplyStatus};
use crate::geoindex::unit_vector;

/// Seconds after which an open or paused point's stock and queue are
/// stale (`ANPI_SUPPLY_STALE_HOURS`): water runs out within hours.
static STALE_AFTER_SECS: AtomicI64 = AtomicI64::new(6 * 3600);

pub fn set_stale_after(hours: u32) {
    STALE_AFTER_SECS.store(i64::from(hours) * 3600, Ordering::Relaxed);
}

/// A supply point as every reader sees it: as stored, and what depends on
/// the moment of the answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SupplyView {
    #[serde(flatten)]
    pub point: SupplyPoint,
    /// Handing out at the time of this answer (open, within its hours).
    pub open_now: bool,
    /// Not confirmed for longer than its kind may be trusted.
    pub stale: bool,
    /// From the point searched from, in metres (lists near a point only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

impl SupplyView {
    pub fn of(p: &SupplyPoint, now: DateTime<Utc>) -> Self {
        let after = STALE_AFTER_SECS.load(Ordering::Relaxed);
        SupplyView {
            point: p.clone(),
            open_now: p.open_now(now),
            stale: p.status != SupplyStatus::Closed && (now - p.confirmed_at).num_seconds() > after,
            distance_m: None,
        }
    }
}

/// What a resident asks for; every part optional.
#[derive(Clone, Debug, Default)]
pub struct SupplyFilter {
    pub kinds: Vec<SupplyKind>,
    pub item: Option<String>,
    pub open_now: bool,
    /// Closed points are left out unless asked for.
    pub include_closed: bool,
    pub municipality: Option<MunicipalityCode>,
}

impl SupplyFilter {
    fn accepts(&self, p: &SupplyPoint, now: DateTime<Utc>) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&p.kind))
            && self.item.as_deref().is_none_or(|i| p.has_item(i))
            && (!self.open_now || p.open_now(now))
            && (self.include_closed || p.status != SupplyStatus::Closed)
            && self
                .municipality
                .as_ref()
                .is_none_or(|m| *m == p.municipality)
    }
}

type Entry = GeomWithData<[f64; 3], Arc<str>>;

/// A cheap handle; clones share one index.
#[derive(Clone, Default)]
pub struct SupplyIndex {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    tree: RTree<Entry>,
    by_id: HashMap<Arc<str>, Arc<SupplyPoint>>,
}

impl SupplyIndex {
    pub fn new(points: impl IntoIterator<Item = SupplyPoint>) -> Self {
        let index = Self::default();
        for p in points {
            index.upsert(p);
        }
        index
    }

    /// Adds or replaces a point; an older version than the one held is
    /// ignored (a reload may finish after a later write was applied).
    pub fn upsert(&self, point: SupplyPoint) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id: Arc<str> = Arc::from(point.id.as_str());
        if let Some(held) = inner.by_id.get(&id) {
            if held.version > point.version {
                return;
            }
            let old = Entry::new(unit_vector(held.at), id.clone());
            inner.tree.remove(&old);
        }
        inner
            .tree
            .insert(Entry::new(unit_vector(point.at), id.clone()));
        inner.by_id.insert(id, Arc::new(point));
    }

    pub fn get(&self, id: &str) -> Option<Arc<SupplyPoint>> {
        self.read().by_id.get(id).cloned()
    }

    /// The `limit` nearest points passing `filter`, nearest first.
    pub fn nearest(
        &self,
        at: LatLon,
        limit: usize,
        filter: &SupplyFilter,
        now: DateTime<Utc>,
    ) -> Vec<SupplyView> {
        let inner = self.read();
        let origin = Point::new(at.lon, at.lat);
        inner
            .tree
            .nearest_neighbor_iter(&unit_vector(at))
            .filter_map(|e| inner.by_id.get(&e.data))
            .filter(|p| filter.accepts(p, now))
            .take(limit)
            .map(|p| SupplyView {
                distance_m: Some(Haversine.distance(origin, Point::new(p.at.lon, p.at.lat))),
                ..SupplyView::of(p, now)
            })
            .collect()
    }

    /// Every point passing `filter`, by name (a municipality's list).
    pub fn list(&self, filter: &SupplyFilter, now: DateTime<Utc>) -> Vec<SupplyView> {
        let inner = self.read();
        let mut all: Vec<SupplyView> = inner
            .by_id
            .values()
            .filter(|p| filter.accepts(p, now))
            .map(|p| SupplyView::of(p, now))
            .collect();
        all.sort_by(|a, b| (&a.point.name, &a.point.id).cmp(&(&b.point.name, &b.point.id)));
        all
    }

    /// Replaces the whole content (after the broker was lost).
    pub fn replace_all(&self, points: impl IntoIterator<Item = SupplyPoint>) {
        let fresh = Self::new(points);
        let fresh = std::mem::take(&mut *fresh.inner.write().unwrap_or_else(|e| e.into_inner()));
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}
