//! Channel names: what a live subscriber can ask for, and where each lives
//! in Redis.
//!
//! - `cell:<h3 index>`: an H3 cell at resolution 7 (about 5 km², edge about
//!   1.2 km). A place-and-radius subscription becomes the cells covering it.
//! - `area:<municipality code>`: one municipality (JIS X 0402).
//! - `incident:<id>`, `person:<token>`: reserved for later features; the
//!   names are accepted so clients can be written against them now.
//!
//! In Redis every channel gets a hash tag (`{…}`) so that its sequence
//! counter, its history and its sharded pub/sub channel share one cluster
//! slot, and so that neighbouring cells (one resolution-3 parent, about
//! 12,000 km²) and the areas of one prefecture land on the same shard: a
//! resident's radius subscription then usually talks to one node.

use std::fmt;

use h3o::{CellIndex, LatLng, Resolution};

use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;

/// The grid resolution of `cell:` channels.
pub const CELL_RESOLUTION: Resolution = Resolution::Seven;
/// The parent resolution whose index is a cell channel's hash tag.
const TAG_RESOLUTION: Resolution = Resolution::Three;
/// Largest radius a `near` subscription may ask for; 10 km at resolution 7 is
/// about 130 cells.
pub const MAX_RADIUS_M: f64 = 10_000.0;
/// Longest channel name accepted from a client.
const MAX_NAME_LEN: usize = 100;

/// A parsed, valid channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Cell(CellIndex),
    Area(MunicipalityCode),
    /// What a municipality's offices tell residents (announcements), alone:
    /// a page that shows only those need not take every shelter of `area:`.
    Notices(MunicipalityCode),
    Incident(String),
    Person(String),
    /// A private inbox: a requester's or a volunteer's own aid events. Its
    /// name is derived from the server secret and given only to its owner.
    Inbox(String),
    /// Internal: every instance listens here to keep its shelter index in
    /// step with writes made on other instances. Clients cannot subscribe.
    Registry,
}

impl Channel {
    /// Parses a name a client sent; internal channels are refused.
    pub fn parse(name: &str) -> Result<Channel, String> {
        if name.len() > MAX_NAME_LEN {
            return Err(format!("channel name longer than {MAX_NAME_LEN} bytes"));
        }
        let (prefix, rest) = name.split_once(':').ok_or_else(|| {
            format!("{name:?} is not a channel; use cell:…, area:…, incident:… or person:…")
        })?;
        match prefix {
            "cell" => {
                let cell: CellIndex = rest
                    .parse()
                    .map_err(|_| format!("{rest:?} is not an H3 cell index"))?;
                if cell.resolution() != CELL_RESOLUTION {
                    return Err(format!(
                        "cell channels use H3 resolution {}; {rest} has resolution {}",
                        u8::from(CELL_RESOLUTION),
                        u8::from(cell.resolution())
                    ));
                }
                Ok(Channel::Cell(cell))
            }
            "area" => MunicipalityCode::parse(rest)
                .map(Channel::Area)
                .map_err(|e| e.to_string()),
            "notices" => MunicipalityCode::parse(rest)
                .map(Channel::Notices)
                .map_err(|e| e.to_string()),
            "incident" | "person" | "inbox" if is_token(rest) => Ok(match prefix {
                "incident" => Channel::Incident(rest.to_owned()),
                "person" => Channel::Person(rest.to_owned()),
                _ => Channel::Inbox(rest.to_owned()),
            }),
            "incident" | "person" | "inbox" => Err(format!(
                "{prefix} ids are 1 to 64 letters, digits, '-' or '_'"
            )),
            _ => Err(format!(
                "unknown channel kind {prefix:?}; use cell, area, notices, incident, person or inbox"
            )),
        }
    }

    /// A channel name as written into the outbox: what [`Channel::parse`]
    /// accepts, and the internal `registry`.
    pub fn from_stored(name: &str) -> Result<Channel, String> {
        match name {
            "registry" => Ok(Channel::Registry),
            _ => Channel::parse(name),
        }
    }

    /// The cell a point lies in.
    pub fn cell_at(at: LatLon) -> Channel {
        Channel::Cell(latlng(at).to_cell(CELL_RESOLUTION))
    }

    /// The cells that cover a circle: every cell that may hold a point within
    /// `radius_m` of `at`.
    pub fn cells_covering(at: LatLon, radius_m: f64) -> Vec<Channel> {
        let centre = latlng(at);
        let origin = centre.to_cell(CELL_RESOLUTION);
        // Average edge with a margin: cells vary in size across the globe.
        let edge = CELL_RESOLUTION.edge_length_m() * 1.25;
        // Every cell within grid distance k has its centre within about
        // 1.5·edge·k; a cell can reach a point `edge` away from its centre.
        let k = ((radius_m + edge) / (1.5 * CELL_RESOLUTION.edge_length_m() * 0.9)).ceil() as u32;
        let mut cells: Vec<CellIndex> = origin.grid_disk(k);
        cells.retain(|c| LatLng::from(*c).distance_m(centre) <= radius_m + edge);
        cells.sort_unstable();
        cells.into_iter().map(Channel::Cell).collect()
    }

    /// The channel's Redis name, with its hash tag.
    pub fn redis_name(&self) -> String {
        match self {
            Channel::Cell(cell) => {
                let parent = cell.parent(TAG_RESOLUTION).unwrap_or(*cell);
                format!("anpi:{{c{parent}}}:{self}")
            }
            Channel::Area(code) | Channel::Notices(code) => {
                format!("anpi:{{p{}}}:{self}", &code.as_str()[..2])
            }
            Channel::Incident(_) | Channel::Person(_) | Channel::Inbox(_) | Channel::Registry => {
                format!("anpi:{{{self}}}")
            }
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Cell(c) => write!(f, "cell:{c}"),
            Channel::Area(code) => write!(f, "area:{}", code.as_str()),
            Channel::Notices(code) => write!(f, "notices:{}", code.as_str()),
            Channel::Incident(id) => write!(f, "incident:{id}"),
            Channel::Person(token) => write!(f, "person:{token}"),
            Channel::Inbox(token) => write!(f, "inbox:{token}"),
            Channel::Registry => f.write_str("registry"),
        }
    }
}

fn latlng(at: LatLon) -> LatLng {
    LatLng::new(at.lat, at.lon).expect("LatLon is validated to finite degrees")
}

fn is_token(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_names_as_documented() {
        // docs/live-protocol.md shows these: central Nanao's cell and area.
        let cell = Channel::cell_at(LatLon::new(37.0432, 136.9674).unwrap());
        assert_eq!(cell.to_string(), "cell:872e713a0ffffff");
        assert_eq!(
            cell.redis_name(),
            "anpi:{c832e71fffffffff}:cell:872e713a0ffffff"
        );
        let area = Channel::parse("area:172022").unwrap();
        assert_eq!(area.redis_name(), "anpi:{p17}:area:172022");
    }

    #[test]
    fn names_round_trip_and_bad_names_say_why() {
        for name in [
            "area:172022",
            "notices:172022",
            "incident:abc-1",
            "person:tok_9",
        ] {
            assert_eq!(Channel::parse(name).unwrap().to_string(), name);
        }
        let cell = Channel::cell_at(LatLon::new(37.0432, 136.9674).unwrap());
        assert_eq!(Channel::parse(&cell.to_string()).unwrap(), cell);
        assert!(Channel::parse("registry").is_err());
        assert!(
            Channel::parse("area:172021")
                .unwrap_err()
                .contains("check digit")
        );
        assert!(Channel::parse("cell:zz").unwrap_err().contains("H3"));
        assert!(
            Channel::parse("weather:1")
                .unwrap_err()
                .contains("unknown channel kind")
        );
        assert!(Channel::parse("person:a b").is_err());
    }

    #[test]
    fn a_covering_holds_every_point_of_the_circle() {
        let at = LatLon::new(37.0432, 136.9674).unwrap();
        let radius = 3000.0;
        let cover = Channel::cells_covering(at, radius);
        assert!(cover.len() > 3 && cover.len() < 40, "{}", cover.len());
        // Points on rings inside the circle all fall in covered cells.
        for step in 0..360 {
            let bearing = f64::from(step).to_radians();
            for frac in [0.3, 0.7, 0.99] {
                let d = radius * frac / 6_371_000.0;
                let lat = at.lat + d.to_degrees() * bearing.cos();
                let lon = at.lon + d.to_degrees() * bearing.sin() / at.lat.to_radians().cos();
                let p = Channel::cell_at(LatLon::new(lat, lon).unwrap());
                assert!(cover.contains(&p), "{p} at bearing {step}° missing");
            }
        }
    }

    #[test]
    fn neighbouring_cells_share_a_hash_tag() {
        let a = Channel::cell_at(LatLon::new(37.0432, 136.9674).unwrap());
        let b = Channel::cell_at(LatLon::new(37.05, 136.98).unwrap());
        let tag = |c: &Channel| {
            let n = c.redis_name();
            n[n.find('{').unwrap()..=n.find('}').unwrap()].to_owned()
        };
        assert_eq!(tag(&a), tag(&b));
        let area = Channel::parse("area:172022").unwrap().redis_name();
        assert_eq!(area, "anpi:{p17}:area:172022");
    }
}
