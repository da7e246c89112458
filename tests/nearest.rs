//! The R-tree's nearest-shelter answers agree with a brute-force haversine
//! ordering, for random shelters, points and filters, all over the globe.

use anpi::domain::municipality::MunicipalityCode;
use anpi::domain::shelter::{
    Capacity, Hazard, HazardSet, LatLon, LiveState, Shelter, ShelterKind, ShelterSite,
    ShelterStatus,
};
use anpi::geoindex::{ShelterFilter, ShelterIndex};
use geo::{Distance, Haversine, Point};
use proptest::prelude::*;

fn shelter(
    i: usize,
    lat: f64,
    lon: f64,
    hazards: u8,
    status: usize,
    cap: Option<i64>,
    occ: i64,
) -> Shelter {
    Shelter {
        site: ShelterSite {
            id: format!("S{i:05}"),
            municipality: MunicipalityCode::parse("172022").unwrap(),
            name: format!("shelter {i}"),
            name_kana: None,
            name_en: None,
            address: None,
            location: Some(LatLon { lat, lon }),
            elevation_m: None,
            phone: None,
            hazards: HazardSet::from_bits(i64::from(hazards)),
            kind: ShelterKind::EmergencyEvacuationSite,
            capacity: Capacity {
                indoor: cap,
                outdoor: None,
                text: None,
            },
            served_area: None,
        },
        live: LiveState {
            status: ShelterStatus::ALL[status],
            occupancy: occ,
            ..LiveState::default()
        },
    }
}

fn arb_shelters() -> impl Strategy<Value = Vec<Shelter>> {
    prop::collection::vec(
        (
            -90.0f64..=90.0,
            -180.0f64..=180.0,
            any::<u8>(),
            0usize..4,
            prop::option::of(1i64..500),
            0i64..600,
        ),
        0..300,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (lat, lon, h, st, cap, occ))| shelter(i, lat, lon, h, st, cap, occ))
            .collect()
    })
}

fn arb_filter() -> impl Strategy<Value = ShelterFilter> {
    (
        prop::option::of(0usize..8),
        prop::collection::vec(0usize..4, 0..3),
        any::<bool>(),
    )
        .prop_map(|(hazard, statuses, has_room)| ShelterFilter {
            hazard: hazard.map(|h| Hazard::ALL[h]),
            statuses: statuses
                .into_iter()
                .map(|s| ShelterStatus::ALL[s])
                .collect(),
            has_room,
            municipality: None,
        })
}

fn distance(a: LatLon, b: LatLon) -> f64 {
    Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn nearest_matches_brute_force(
        shelters in arb_shelters(),
        lat in -90.0f64..=90.0,
        lon in -180.0f64..=180.0,
        k in 1usize..20,
        filter in arb_filter(),
    ) {
        let at = LatLon { lat, lon };
        let index = ShelterIndex::new(shelters.clone());
        let got = index.nearest(at, k, &filter);

        let mut expected: Vec<(f64, String)> = shelters
            .iter()
            .filter(|s| filter.accepts(s))
            .map(|s| (distance(at, s.site.location.unwrap()), s.site.id.clone()))
            .collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0));
        expected.truncate(k);

        prop_assert_eq!(got.len(), expected.len());
        for ((shelter, d), (want_d, want_id)) in got.iter().zip(&expected) {
            // Equal distances may come in either order; distances must agree.
            prop_assert!((d - want_d).abs() < 1e-6 * want_d.max(1.0), "{} vs {}", d, want_d);
            if (d - want_d).abs() > 1e-3 {
                prop_assert_eq!(&shelter.site.id, want_id);
            }
            prop_assert!(filter.accepts(shelter));
        }
    }

    #[test]
    fn upserts_keep_the_index_in_step(
        shelters in arb_shelters(),
        moves in prop::collection::vec((0usize..300, -90.0f64..=90.0, -180.0f64..=180.0), 0..50),
        lat in -90.0f64..=90.0,
        lon in -180.0f64..=180.0,
    ) {
        let index = ShelterIndex::new(shelters.clone());
        let mut current = shelters.clone();
        for (i, mlat, mlon) in moves {
            if let Some(s) = current.get_mut(i) {
                s.site.location = Some(LatLon { lat: mlat, lon: mlon });
                index.upsert(s.clone());
            }
        }
        let rebuilt = ShelterIndex::new(current.clone());
        let at = LatLon { lat, lon };
        let all = ShelterFilter::default();
        let a: Vec<f64> = index.nearest(at, 10, &all).into_iter().map(|(_, d)| d).collect();
        let b: Vec<f64> = rebuilt.nearest(at, 10, &all).into_iter().map(|(_, d)| d).collect();
        prop_assert_eq!(a, b);
        prop_assert_eq!(index.len(), current.len());
    }
}
