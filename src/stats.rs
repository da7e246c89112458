//! What an incident's check-ins add up to: each person counted once, by
//! their latest check-in. Served at `/v1/incidents/{id}/stats` and published
//! on `incident:<id>` (at most once a second: counts may be coalesced).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::person::Status;
use crate::geoindex::{ShelterFilter, ShelterIndex};
use crate::store::{LatestCheckin, Store};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentStats {
    /// People checked in (a household member is a person).
    pub people: u64,
    /// People whose latest check-in has each status.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_status: BTreeMap<Status, u64>,
    /// People whose latest check-in is at each shelter (self-reported arrivals).
    pub by_shelter: BTreeMap<String, u64>,
    /// By municipality: of the shelter they are at, else of the shelter
    /// nearest to where they checked in; `unknown` when neither is known.
    pub by_municipality: BTreeMap<String, u64>,
}

pub fn count(latest: &[LatestCheckin], index: &ShelterIndex) -> IncidentStats {
    let mut stats = IncidentStats {
        people: latest.len() as u64,
        ..IncidentStats::default()
    };
    for c in latest {
        for s in &c.statuses {
            *stats.by_status.entry(*s).or_default() += 1;
        }
        if let Some(id) = &c.shelter_id {
            *stats.by_shelter.entry(id.clone()).or_default() += 1;
        }
        let at_shelter = c.shelter_id.as_deref().and_then(|id| index.get(id));
        let nearest = || {
            c.location.and_then(|at| {
                index
                    .nearest(at, 1, &ShelterFilter::default())
                    .into_iter()
                    .next()
                    .map(|(s, _)| s)
            })
        };
        let municipality = at_shelter
            .or_else(nearest)
            .map(|s| s.site.municipality.to_string())
            .unwrap_or_else(|| "unknown".into());
        *stats.by_municipality.entry(municipality).or_default() += 1;
    }
    stats
}

/// The stats of an incident now (after its personal data was deleted: the
/// counts kept then).
pub async fn of(
    store: &Store,
    index: &ShelterIndex,
    incident_id: &str,
) -> anyhow::Result<IncidentStats> {
    if let Some(kept) = store.final_stats(incident_id).await? {
        return Ok(kept);
    }
    Ok(count(&store.latest_checkins(incident_id).await?, index))
}
