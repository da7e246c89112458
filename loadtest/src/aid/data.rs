//! The aid benchmark's data: requests and offers placed like Japan's
//! population (`synthetic::populated_point`: thirty metropolitan areas and
//! regional centres weighted by population, scattered tens of kilometres),
//! with random categories, items, urgencies and ages from a fixed seed, and
//! their rows for `COPY` into anpi's `aid_request` and `aid_offer` (with the
//! two geography columns the benchmark adds for PostGIS).

use std::collections::HashMap;
use std::fmt::Write as _;

use anpi::aid::public_place;
use anpi::domain::aid::{Category, Item, Urgency};
use anpi::domain::municipality::MunicipalityCode;
use anpi::domain::shelter::LatLon;
use sqlx::types::chrono::{DateTime, Utc};

use crate::synthetic::{Rng, populated_point};

/// Side of a synthetic municipality's grid cell, degrees: about 17 × 13 km
/// at Tokyo's latitude, near the 217 km² of Japan's average municipality.
const MUNICIPALITY_DEGREES: f64 = 0.15;

/// What a request of each category asks for: (item, unit).
fn item_of(category: Category) -> (&'static str, &'static str) {
    match category {
        Category::Water => ("水 2L", "本"),
        Category::Food => ("おにぎり", "個"),
        Category::BabySupplies => ("粉ミルク", "缶"),
        Category::Medicine => ("常備薬", "箱"),
        Category::Hygiene => ("簡易トイレ", "個"),
        Category::BlanketsClothing => ("毛布", "枚"),
        Category::Fuel => ("灯油 18L", "缶"),
        Category::Transport => ("通院の送迎", "回"),
        Category::PetSupplies => ("ペットフード", "袋"),
        Category::CleanUp => ("泥出し", "人"),
        Category::Care => ("見守り", "時間"),
        Category::Interpreting => ("通訳", "時間"),
        Category::Shelter => ("宿泊", "泊"),
        Category::Other => ("その他", "個"),
    }
}

/// A request as generated (anpi's `aid_request` row without contact).
pub struct Request {
    pub id: String,
    pub municipality: String,
    pub category: Category,
    pub items: Vec<Item>,
    pub quantity: i32,
    pub claimed: i32,
    pub urgency: Urgency,
    pub at: LatLon,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
}

/// An offer as generated (anpi's `aid_offer` row).
pub struct Offer {
    pub id: String,
    pub municipality: String,
    pub category: Category,
    pub items: Vec<Item>,
    pub quantity: i32,
    pub at: LatLon,
    pub reach_m: f64,
    pub available_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
}

/// A UUID-shaped id (version 7 layout, random bits from `rng`), like the
/// ids anpi gives.
fn id(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// The synthetic municipality of a point: its cell in a grid of
/// `MUNICIPALITY_DEGREES`, numbered into a five-digit code (check digit
/// added as JIS X 0402 does). Not real codes: anpi only checks their shape,
/// and what matters here is that requests are split among municipalities
/// of realistic size (a claim's transaction counts its municipality's open
/// requests).
pub fn municipality_of(at: LatLon) -> String {
    let row = ((at.lat - 20.0) / MUNICIPALITY_DEGREES).floor() as i64;
    let col = ((at.lon - 120.0) / MUNICIPALITY_DEGREES).floor() as i64;
    let n = (row * 200 + col).rem_euclid(100_000);
    MunicipalityCode::parse(&format!("{n:05}"))
        .expect("five digits make a code")
        .as_str()
        .to_owned()
}

fn category(rng: &mut Rng) -> Category {
    Category::ALL[rng.below(Category::ALL.len() as i64) as usize]
}

/// Low 20%, normal 50%, high 20%, critical 10%.
fn urgency(rng: &mut Rng) -> Urgency {
    match rng.unit() {
        u if u < 0.2 => Urgency::Low,
        u if u < 0.7 => Urgency::Normal,
        u if u < 0.9 => Urgency::High,
        _ => Urgency::Critical,
    }
}

/// `now` moved by `seconds` (whole seconds, as the database keeps them here).
fn shifted(now: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(now.timestamp() + seconds, 0).expect("a time near now")
}

/// A time in the `within` seconds before `now`.
fn before(now: DateTime<Utc>, rng: &mut Rng, within: i64) -> DateTime<Utc> {
    shifted(now, -rng.below(within.max(1)))
}

/// A time between `since` and `now`.
fn since(since: DateTime<Utc>, rng: &mut Rng, now: DateTime<Utc>) -> DateTime<Utc> {
    shifted(since, rng.below((now - since).num_seconds().max(1)))
}

/// `n` requests: 1–3 lines of 1–20 units each; 10% partly claimed already;
/// posted in the last 48 hours and reconfirmed since (none expires during
/// a run; some are stale, as in a real list).
pub fn requests(n: usize, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Request> {
    (0..n)
        .map(|_| {
            let at = populated_point(rng);
            let category = category(rng);
            let (name, unit) = item_of(category);
            let items: Vec<Item> = (0..1 + rng.below(3))
                .map(|line| Item {
                    name: if line == 0 {
                        name.to_owned()
                    } else {
                        format!("{name} ({})", line + 1)
                    },
                    quantity: 1 + rng.below(20) as i32,
                    unit: unit.to_owned(),
                })
                .collect();
            let quantity = items.iter().map(|i| i.quantity).sum::<i32>();
            let claimed = if quantity > 1 && rng.unit() < 0.1 {
                1 + rng.below(i64::from(quantity - 1)) as i32
            } else {
                0
            };
            let created_at = before(now, rng, 48 * 3600);
            let confirmed_at = since(created_at, rng, now);
            Request {
                id: id(rng),
                municipality: municipality_of(at),
                category,
                items,
                quantity,
                claimed,
                urgency: urgency(rng),
                at,
                created_at,
                confirmed_at,
            }
        })
        .collect()
}

/// `n` offers: one line of 1–100 units, reach 2–20 km; 60% with no end,
/// 35% available for 1–72 more hours, 5% past their end (still open in the
/// database, so a matcher must leave them out); posted in the last 72 hours.
pub fn offers(n: usize, rng: &mut Rng, now: DateTime<Utc>) -> Vec<Offer> {
    (0..n)
        .map(|_| {
            let at = populated_point(rng);
            let category = category(rng);
            let (name, unit) = item_of(category);
            let quantity = 1 + rng.below(100) as i32;
            let reach_m = (2_000.0 + rng.unit() * 18_000.0).round();
            let available_until = match rng.unit() {
                u if u < 0.6 => None,
                u if u < 0.95 => Some(shifted(now, 3600 * (1 + rng.below(72)))),
                _ => Some(shifted(now, -3600 * (1 + rng.below(24)))),
            };
            let created_at = before(now, rng, 72 * 3600);
            let confirmed_at = since(created_at, rng, now);
            Offer {
                id: id(rng),
                municipality: municipality_of(at),
                category,
                items: vec![Item {
                    name: name.to_owned(),
                    quantity,
                    unit: unit.to_owned(),
                }],
                quantity,
                at,
                reach_m,
                available_until,
                created_at,
                confirmed_at,
            }
        })
        .collect()
}

/// The request every volunteer claims at once: `quantity` bottles of water
/// for a shelter in Shinjuku, critical, posted an hour ago.
pub fn hot_request(quantity: i32, rng: &mut Rng, now: DateTime<Utc>) -> Request {
    let at = LatLon {
        lat: 35.6938,
        lon: 139.7034,
    };
    Request {
        id: id(rng),
        municipality: municipality_of(at),
        category: Category::Water,
        items: vec![Item {
            name: "水 2L".into(),
            quantity,
            unit: "本".into(),
        }],
        quantity,
        claimed: 0,
        urgency: Urgency::Critical,
        at,
        created_at: shifted(now, -3600),
        confirmed_at: shifted(now, -3600),
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn point(at: LatLon) -> String {
    format!("SRID=4326;POINT({} {})", at.lon, at.lat)
}

/// No edit key hashes to this: nobody but the benchmark changes its requests.
const EDIT_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The columns [`request_row`] writes, in its order.
pub const REQUEST_COLUMNS: &str = "id, municipality, category, items, quantity, claimed, urgency, lat, lon, \
     edit_hash, posted_by, status, hidden, created_at, updated_at, confirmed_at, confirmed_by, geog, pub_geog";

/// One `COPY … FROM STDIN` (text format) line of `aid_request`. `geog` is
/// the exact point, `pub_geog` the public one anpi matches from (the centre
/// of the point's H3 cell, resolution 7).
pub fn request_row(r: &Request, out: &mut String) {
    let status = if r.claimed > 0 {
        "partially_claimed"
    } else {
        "open"
    };
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{EDIT_HASH}\tresident\t{status}\tf\t{}\t{}\t{}\tresident\t{}\t{}",
        r.id,
        r.municipality,
        r.category.as_str(),
        serde_json::to_string(&r.items).expect("items serialise"),
        r.quantity,
        r.claimed,
        r.urgency.as_str(),
        r.at.lat,
        r.at.lon,
        timestamp(r.created_at),
        timestamp(r.confirmed_at),
        timestamp(r.confirmed_at),
        point(r.at),
        point(public_place(r.at).0),
    );
}

/// The columns [`offer_row`] writes, in its order.
pub const OFFER_COLUMNS: &str = "id, municipality, category, items, quantity, lat, lon, reach_m, \
     available_until, account_id, posted_by, status, hidden, created_at, updated_at, confirmed_at, \
     confirmed_by, geog, pub_geog";

/// One `COPY` line of `aid_offer`, made by account `account_id`.
pub fn offer_row(o: &Offer, account_id: i64, out: &mut String) {
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{account_id}\tvolunteer\topen\tf\t{}\t{}\t{}\tvolunteer\t{}\t{}",
        o.id,
        o.municipality,
        o.category.as_str(),
        serde_json::to_string(&o.items).expect("items serialise"),
        o.quantity,
        o.at.lat,
        o.at.lon,
        o.reach_m,
        o.available_until
            .map_or_else(|| "\\N".to_owned(), timestamp),
        timestamp(o.created_at),
        timestamp(o.confirmed_at),
        timestamp(o.confirmed_at),
        point(o.at),
        point(public_place(o.at).0),
    );
}

/// How the generated requests are spread, for the report.
#[derive(Debug)]
pub struct Spread {
    /// Distinct public places (H3 cells, resolution 7) holding requests.
    pub cells: usize,
    /// Requests in the fullest cell: all at one public place, so equally
    /// near to everyone.
    pub densest_cell: usize,
    /// Distinct synthetic municipalities, and requests in the fullest one.
    pub municipalities: usize,
    pub densest_municipality: usize,
    /// Share within 50 km of Tokyo Station, and of Osaka Station.
    pub near_tokyo: f64,
    pub near_osaka: f64,
}

fn km_between(a: LatLon, b: LatLon) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let (dla, dlo) = (la2 - la1, (b.lon - a.lon).to_radians());
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

pub fn spread(requests: &[Request]) -> Spread {
    let mut cells: HashMap<(u64, u64), usize> = HashMap::new();
    let mut municipalities: HashMap<&str, usize> = HashMap::new();
    let tokyo = LatLon {
        lat: 35.6812,
        lon: 139.7671,
    };
    let osaka = LatLon {
        lat: 34.7025,
        lon: 135.4959,
    };
    let (mut near_tokyo, mut near_osaka) = (0usize, 0usize);
    for r in requests {
        let place = public_place(r.at).0;
        *cells
            .entry((place.lat.to_bits(), place.lon.to_bits()))
            .or_default() += 1;
        *municipalities.entry(&r.municipality).or_default() += 1;
        near_tokyo += usize::from(km_between(r.at, tokyo) <= 50.0);
        near_osaka += usize::from(km_between(r.at, osaka) <= 50.0);
    }
    let n = requests.len().max(1) as f64;
    Spread {
        cells: cells.len(),
        densest_cell: cells.values().copied().max().unwrap_or(0),
        municipalities: municipalities.len(),
        densest_municipality: municipalities.values().copied().max().unwrap_or(0),
        near_tokyo: near_tokyo as f64 / n,
        near_osaka: near_osaka as f64 / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_323_045, 0).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let a = requests(500, &mut Rng::new(7), now());
        let b = requests(500, &mut Rng::new(7), now());
        let c = requests(500, &mut Rng::new(8), now());
        let key = |r: &Request| (r.id.clone(), r.at.lat.to_bits(), r.quantity, r.category);
        assert!(a.iter().map(key).eq(b.iter().map(key)));
        assert!(!a.iter().map(key).eq(c.iter().map(key)));
    }

    #[test]
    fn requests_are_spread_like_the_population_with_every_category() {
        let rs = requests(40_000, &mut Rng::new(2024), now());
        let s = spread(&rs);
        // About a third of the weight is Greater Tokyo (31% in four centres
        // scattered 20-40 km), an eighth Osaka-Kobe-Kyoto.
        assert!((0.17..0.30).contains(&s.near_tokyo), "{s:?}");
        assert!((0.06..0.16).contains(&s.near_osaka), "{s:?}");
        assert!(s.near_tokyo > 1.5 * s.near_osaka, "{s:?}");
        // Clustered: fewer public places than requests, some holding many.
        assert!(s.cells < rs.len() * 3 / 4 && s.densest_cell >= 10, "{s:?}");
        assert!(s.municipalities > 500, "{s:?}");
        for r in &rs {
            assert!((24.0..=45.5).contains(&r.at.lat) && (122.9..=146.0).contains(&r.at.lon));
            assert_eq!(r.quantity, r.items.iter().map(|i| i.quantity).sum::<i32>());
            assert!((0..r.quantity).contains(&r.claimed));
            assert!(r.created_at <= r.confirmed_at && r.confirmed_at <= now());
            assert!((now() - r.created_at).num_seconds() <= 48 * 3600);
            assert!(MunicipalityCode::parse(&r.municipality).is_ok());
        }
        let share = |c: Category| rs.iter().filter(|r| r.category == c).count() as f64 / 40_000.0;
        for c in Category::ALL {
            assert!((0.055..0.09).contains(&share(c)), "{c:?}: {}", share(c));
        }
        let partly = rs.iter().filter(|r| r.claimed > 0).count() as f64 / 40_000.0;
        assert!((0.07..0.11).contains(&partly), "{partly}");
    }

    #[test]
    fn offers_reach_2_to_20_km_and_some_have_ended() {
        let os = offers(20_000, &mut Rng::new(1), now());
        assert!(
            os.iter()
                .all(|o| (2_000.0..=20_000.0).contains(&o.reach_m) && o.quantity >= 1)
        );
        let ended = os
            .iter()
            .filter(|o| o.available_until.is_some_and(|t| t <= now()))
            .count() as f64
            / 20_000.0;
        assert!((0.03..0.07).contains(&ended), "{ended}");
        let ids: std::collections::HashSet<_> = os.iter().map(|o| &o.id).collect();
        assert_eq!(ids.len(), os.len(), "ids are unique");
    }

    #[test]
    fn copy_rows_have_every_column_and_the_public_place() {
        let mut rng = Rng::new(3);
        let r = hot_request(500, &mut rng, now());
        let mut line = String::new();
        request_row(&r, &mut line);
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        assert_eq!(fields.len(), REQUEST_COLUMNS.split(',').count());
        assert_eq!(fields[0].len(), 36);
        assert_eq!(fields[2], "water");
        assert_eq!(fields[12], "f");
        assert_eq!(fields[17], "SRID=4326;POINT(139.7034 35.6938)");
        let public = public_place(r.at).0;
        assert_eq!(
            fields[18],
            format!("SRID=4326;POINT({} {})", public.lon, public.lat)
        );
        let o = &offers(1, &mut rng, now())[0];
        let mut line = String::new();
        offer_row(o, 42, &mut line);
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        assert_eq!(fields.len(), OFFER_COLUMNS.split(',').count());
        assert_eq!(fields[9], "42");
    }

    #[test]
    fn nearby_points_share_a_municipality_and_far_ones_do_not() {
        let a = LatLon {
            lat: 35.6938,
            lon: 139.7034,
        };
        let near = LatLon {
            lat: 35.6939,
            lon: 139.7035,
        };
        let far = LatLon {
            lat: 35.0,
            lon: 135.8,
        };
        assert_eq!(municipality_of(a), municipality_of(near));
        assert_ne!(municipality_of(a), municipality_of(far));
        assert_eq!(municipality_of(a).len(), 6);
    }
}
