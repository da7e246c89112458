//! Synthetic shelters spread like Japan's: clustered around population
//! centres, weighted by population, scattered tens of kilometres.

use anpi::domain::municipality::MunicipalityCode;
use anpi::domain::shelter::{
    Capacity, Hazard, HazardSet, LatLon, LiveState, Shelter, ShelterKind, ShelterSite,
    ShelterStatus,
};

/// (lat, lon, population in 10,000s, scatter in degrees) of metropolitan
/// areas and regional centres; together they cover most of where people live.
pub(crate) const CENTRES: &[(f64, f64, f64, f64)] = &[
    (35.68, 139.69, 1400.0, 0.35), // Tokyo
    (35.44, 139.64, 375.0, 0.2),   // Yokohama
    (34.69, 135.50, 880.0, 0.3),   // Osaka
    (35.18, 136.91, 750.0, 0.3),   // Nagoya
    (43.06, 141.35, 520.0, 0.6),   // Sapporo / Hokkaido
    (33.59, 130.40, 510.0, 0.4),   // Fukuoka
    (34.69, 135.19, 540.0, 0.3),   // Kobe / Hyogo
    (35.01, 135.77, 260.0, 0.3),   // Kyoto
    (38.27, 140.87, 230.0, 0.5),   // Sendai
    (34.39, 132.46, 280.0, 0.5),   // Hiroshima
    (35.86, 139.65, 730.0, 0.3),   // Saitama
    (35.61, 140.12, 630.0, 0.35),  // Chiba
    (36.39, 139.06, 190.0, 0.4),   // Gunma
    (36.56, 139.88, 190.0, 0.4),   // Tochigi
    (36.34, 140.45, 290.0, 0.4),   // Ibaraki
    (37.90, 139.02, 220.0, 0.6),   // Niigata
    (36.65, 138.18, 200.0, 0.6),   // Nagano
    (34.98, 138.38, 360.0, 0.5),   // Shizuoka
    (36.59, 136.63, 110.0, 0.4),   // Kanazawa / Ishikawa
    (34.66, 133.92, 190.0, 0.5),   // Okayama
    (33.84, 132.77, 130.0, 0.5),   // Matsuyama
    (32.80, 130.71, 170.0, 0.5),   // Kumamoto
    (31.56, 130.56, 160.0, 0.6),   // Kagoshima
    (26.21, 127.68, 145.0, 0.3),   // Naha
    (39.72, 140.10, 95.0, 0.6),    // Akita
    (39.70, 141.15, 120.0, 0.6),   // Morioka
    (40.82, 140.74, 125.0, 0.6),   // Aomori
    (37.75, 140.47, 180.0, 0.6),   // Fukushima
    (34.34, 134.04, 95.0, 0.4),    // Takamatsu
    (33.56, 133.53, 70.0, 0.5),    // Kochi
];

/// SplitMix64: a seeded, repeatable stream, so every run and every peer sees
/// the same shelters and the same query points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let (u, v) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: i64) -> i64 {
        (self.unit() * n as f64) as i64
    }
}

/// A point where people live, drawn by population.
pub fn populated_point(rng: &mut Rng) -> LatLon {
    let total: f64 = CENTRES.iter().map(|c| c.2).sum();
    let mut pick = rng.unit() * total;
    let &(lat, lon, _, scatter) = CENTRES
        .iter()
        .find(|c| {
            pick -= c.2;
            pick < 0.0
        })
        .unwrap_or(&CENTRES[0]);
    LatLon {
        lat: (lat + rng.normal() * scatter).clamp(24.0, 45.5),
        lon: (lon + rng.normal() * scatter).clamp(122.9, 146.0),
    }
}

/// `n` shelters: tsunami-designated ~40%, ~30% open (some of them full).
pub fn shelters(n: usize, rng: &mut Rng) -> Vec<Shelter> {
    let municipality = MunicipalityCode::parse("131016").expect("valid code");
    (0..n)
        .map(|i| {
            let mut hazards: HazardSet = [Hazard::Earthquake].into_iter().collect();
            if rng.unit() < 0.4 {
                hazards.insert(Hazard::Tsunami);
            }
            if rng.unit() < 0.5 {
                hazards.insert(Hazard::Flood);
            }
            let capacity = 50 + rng.below(1950);
            let open = rng.unit() < 0.3;
            let occupancy = if open {
                rng.below(capacity + capacity / 10)
            } else {
                0
            };
            let status = match (open, occupancy >= capacity) {
                (false, _) => ShelterStatus::Closed,
                (true, false) => ShelterStatus::Open,
                (true, true) => ShelterStatus::Full,
            };
            Shelter {
                site: ShelterSite {
                    id: format!("SYN{i:06}"),
                    municipality: municipality.clone(),
                    name: format!("synthetic shelter {i}"),
                    name_kana: None,
                    name_en: None,
                    address: None,
                    location: Some(populated_point(rng)),
                    elevation_m: None,
                    phone: None,
                    hazards,
                    kind: ShelterKind::EmergencyEvacuationSite,
                    capacity: Capacity {
                        indoor: Some(capacity),
                        outdoor: None,
                        text: None,
                    },
                    served_area: None,
                },
                live: LiveState {
                    status,
                    occupancy,
                    ..LiveState::default()
                },
            }
        })
        .collect()
}
