//! Shelters: the national open-data layout plus the live state officials post.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::municipality::MunicipalityCode;

/// The eight hazards of the national list, in the order of its columns
/// (災害種別_洪水 … 災害種別_火山現象).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    Flood,
    Landslide,
    StormSurge,
    Earthquake,
    Tsunami,
    Fire,
    InlandFlood,
    Volcano,
}

impl Hazard {
    pub const ALL: [Hazard; 8] = [
        Hazard::Flood,
        Hazard::Landslide,
        Hazard::StormSurge,
        Hazard::Earthquake,
        Hazard::Tsunami,
        Hazard::Fire,
        Hazard::InlandFlood,
        Hazard::Volcano,
    ];

    /// The API name (`storm_surge`).
    pub fn name(self) -> &'static str {
        match self {
            Hazard::Flood => "flood",
            Hazard::Landslide => "landslide",
            Hazard::StormSurge => "storm_surge",
            Hazard::Earthquake => "earthquake",
            Hazard::Tsunami => "tsunami",
            Hazard::Fire => "fire",
            Hazard::InlandFlood => "inland_flood",
            Hazard::Volcano => "volcano",
        }
    }

    /// The column suffix in the Japanese layouts (`災害種別_洪水` → `洪水`).
    pub fn japanese(self) -> &'static str {
        match self {
            Hazard::Flood => "洪水",
            Hazard::Landslide => "崖崩れ、土石流及び地滑り",
            Hazard::StormSurge => "高潮",
            Hazard::Earthquake => "地震",
            Hazard::Tsunami => "津波",
            Hazard::Fire => "大規模な火事",
            Hazard::InlandFlood => "内水氾濫",
            Hazard::Volcano => "火山現象",
        }
    }

    pub fn parse(name: &str) -> Option<Hazard> {
        Hazard::ALL.into_iter().find(|h| h.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The hazards a site is designated for, as a bit set (stored as one integer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HazardSet(u8);

impl HazardSet {
    pub fn from_bits(bits: i64) -> Self {
        Self(bits as u8)
    }
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }
    pub fn insert(&mut self, h: Hazard) {
        self.0 |= h.bit();
    }
    pub fn contains(self, h: Hazard) -> bool {
        self.0 & h.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Hazard> {
        Hazard::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl FromIterator<Hazard> for HazardSet {
    fn from_iter<I: IntoIterator<Item = Hazard>>(iter: I) -> Self {
        let mut set = HazardSet::default();
        for h in iter {
            set.insert(h);
        }
        set
    }
}

impl Serialize for HazardSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Whether people can go there now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShelterStatus {
    Closed,
    Open,
    Full,
    /// Damaged or threatened: do not go there, whatever the list says.
    Unsafe,
}

impl ShelterStatus {
    pub const ALL: [ShelterStatus; 4] = [
        ShelterStatus::Closed,
        ShelterStatus::Open,
        ShelterStatus::Full,
        ShelterStatus::Unsafe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ShelterStatus::Closed => "closed",
            ShelterStatus::Open => "open",
            ShelterStatus::Full => "full",
            ShelterStatus::Unsafe => "unsafe",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What kind of site it is in law (災害対策基本法).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShelterKind {
    /// 指定緊急避難場所: a place to flee to from an immediate danger.
    EmergencyEvacuationSite,
    /// 指定避難所: a place to stay.
    EvacuationShelter,
    /// 福祉避難所: a place to stay for people who need care.
    WelfareShelter,
    /// Opened ad hoc during an incident; not on the designated list.
    NonDesignated,
}

impl ShelterKind {
    pub const ALL: [ShelterKind; 4] = [
        ShelterKind::EmergencyEvacuationSite,
        ShelterKind::EvacuationShelter,
        ShelterKind::WelfareShelter,
        ShelterKind::NonDesignated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ShelterKind::EmergencyEvacuationSite => "emergency_evacuation_site",
            ShelterKind::EvacuationShelter => "evacuation_shelter",
            ShelterKind::WelfareShelter => "welfare_shelter",
            ShelterKind::NonDesignated => "non_designated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Capacity as the lists give it: indoor and outdoor, either may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Capacity {
    pub indoor: Option<i64>,
    pub outdoor: Option<i64>,
    /// The original text, kept because it often says more (`面積の1/2`).
    pub text: Option<String>,
}

impl Capacity {
    /// The number occupancy is counted against: indoor space where the site
    /// has any (people stay indoors), else outdoor space (a ground one flees
    /// to), else unknown.
    pub fn people(&self) -> Option<i64> {
        [self.indoor, self.outdoor]
            .into_iter()
            .flatten()
            .find(|&n| n > 0)
    }
}

/// The registry part of a shelter: what an import of the master list sets.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ShelterSite {
    pub id: String,
    /// JIS X 0402 six-digit code, e.g. 172022 (Nanao).
    #[schema(value_type = String, example = "172022")]
    pub municipality: MunicipalityCode,
    pub name: String,
    pub name_kana: Option<String>,
    pub name_en: Option<String>,
    pub address: Option<String>,
    /// WGS84; both present or both absent (some ad-hoc sites have none).
    pub location: Option<LatLon>,
    pub elevation_m: Option<f64>,
    pub phone: Option<String>,
    /// The hazards the site is designated for.
    #[schema(value_type = Vec<Hazard>)]
    pub hazards: HazardSet,
    pub kind: ShelterKind,
    pub capacity: Capacity,
    /// Neighbourhood associations served (対象となる町会・自治会).
    pub served_area: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    /// A point on Earth, or why not.
    pub fn new(lat: f64, lon: f64) -> Result<Self, &'static str> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err("latitude must be between -90 and 90");
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err("longitude must be between -180 and 180");
        }
        Ok(Self { lat, lon })
    }
}

/// What a shelter lacks, from one fixed list so that every resident reads
/// it in their own language (the pages hold the words); anything the list
/// does not say goes in the note. Codes shared with aid categories mean the
/// same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShelterNeed {
    Water,
    Food,
    /// Formula, baby food, diapers.
    BabySupplies,
    Medicine,
    /// Soap, sanitary items, masks, disinfectant.
    Hygiene,
    BlanketsClothing,
    /// Cardboard beds, mats, partitions.
    Bedding,
    /// Portable toilets, toilet bags.
    Toilets,
    /// Generators, phone charging.
    Power,
    /// Kerosene, petrol, heaters.
    Fuel,
    /// Hands to run the shelter.
    Staff,
    /// Doctors, nurses, public-health nurses.
    MedicalCare,
    /// Looking after the elderly, the disabled, children.
    Care,
    Interpreting,
    PetSupplies,
    /// Said in the note.
    Other,
}

impl ShelterNeed {
    pub const ALL: [ShelterNeed; 16] = [
        ShelterNeed::Water,
        ShelterNeed::Food,
        ShelterNeed::BabySupplies,
        ShelterNeed::Medicine,
        ShelterNeed::Hygiene,
        ShelterNeed::BlanketsClothing,
        ShelterNeed::Bedding,
        ShelterNeed::Toilets,
        ShelterNeed::Power,
        ShelterNeed::Fuel,
        ShelterNeed::Staff,
        ShelterNeed::MedicalCare,
        ShelterNeed::Care,
        ShelterNeed::Interpreting,
        ShelterNeed::PetSupplies,
        ShelterNeed::Other,
    ];

    /// The code in the API and the database (`baby_supplies`).
    pub fn code(self) -> &'static str {
        match self {
            ShelterNeed::Water => "water",
            ShelterNeed::Food => "food",
            ShelterNeed::BabySupplies => "baby_supplies",
            ShelterNeed::Medicine => "medicine",
            ShelterNeed::Hygiene => "hygiene",
            ShelterNeed::BlanketsClothing => "blankets_clothing",
            ShelterNeed::Bedding => "bedding",
            ShelterNeed::Toilets => "toilets",
            ShelterNeed::Power => "power",
            ShelterNeed::Fuel => "fuel",
            ShelterNeed::Staff => "staff",
            ShelterNeed::MedicalCare => "medical_care",
            ShelterNeed::Care => "care",
            ShelterNeed::Interpreting => "interpreting",
            ShelterNeed::PetSupplies => "pet_supplies",
            ShelterNeed::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.code() == code)
    }
}

/// The live part: what officials post and residents act on. Answers also
/// carry its freshness — `confirmed_at`, `confirmed_by` and `stale` — added
/// where it is serialised (`freshness`), since staleness depends on the clock.
#[derive(Clone, Debug, PartialEq, ToSchema)]
pub struct LiveState {
    pub status: ShelterStatus,
    /// People there now by the office's count.
    pub occupancy: i64,
    pub needs: Vec<ShelterNeed>,
    /// What the list of needs cannot say, in the office's words.
    pub needs_note: Option<String>,
    /// When anpi recorded the last change.
    pub updated_at: Option<DateTime<Utc>>,
    /// Who made it (official's name, or `import`).
    pub updated_by: Option<String>,
    /// The moment the information describes (a snapshot's 時点), if it says.
    pub as_of: Option<DateTime<Utc>>,
    /// People who checked in here themselves (their latest check-in, in open
    /// incidents): shown next to the office's `occupancy`, never instead of it.
    pub self_reported: i64,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            status: ShelterStatus::Closed,
            occupancy: 0,
            needs: Vec::new(),
            needs_note: None,
            updated_at: None,
            updated_by: None,
            as_of: None,
            self_reported: 0,
        }
    }
}

/// A shelter as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Shelter {
    #[serde(flatten)]
    pub site: ShelterSite,
    #[serde(flatten)]
    pub live: LiveState,
}

impl Shelter {
    /// Open and with room left (unknown capacity counts as room: absence of a
    /// number is not a reason to send people away).
    pub fn has_room(&self) -> bool {
        self.live.status == ShelterStatus::Open
            && self
                .site
                .capacity
                .people()
                .is_none_or(|cap| self.live.occupancy < cap)
    }
}

/// A change an official asks for; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveUpdate {
    pub status: Option<ShelterStatus>,
    pub occupancy: Option<i64>,
    pub needs: Option<Vec<ShelterNeed>>,
    /// Replaces the note; an empty one removes it.
    pub needs_note: Option<String>,
    /// The state is still as it says: fresh again, nothing else changed.
    #[serde(default)]
    pub confirm: bool,
}

impl LiveState {
    /// Applies an update. Occupancy at or over indoor capacity makes an open
    /// shelter `full`, and below it makes a full one `open` again, unless the
    /// update sets the status itself.
    pub fn apply(&mut self, update: &LiveUpdate, capacity: Option<i64>) {
        if let Some(needs) = &update.needs {
            self.needs = needs.clone();
        }
        if let Some(note) = &update.needs_note {
            self.needs_note = Some(note.clone()).filter(|n| !n.is_empty());
        }
        if let Some(occupancy) = update.occupancy {
            self.occupancy = occupancy;
        }
        match update.status {
            Some(status) => self.status = status,
            None => {
                if let (Some(cap), Some(_)) = (capacity, update.occupancy) {
                    self.status = match self.status {
                        ShelterStatus::Open if self.occupancy >= cap => ShelterStatus::Full,
                        ShelterStatus::Full if self.occupancy < cap => ShelterStatus::Open,
                        other => other,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_flips_full_and_back() {
        let mut live = LiveState {
            status: ShelterStatus::Open,
            ..LiveState::default()
        };
        let fill = LiveUpdate {
            occupancy: Some(100),
            ..Default::default()
        };
        live.apply(&fill, Some(100));
        assert_eq!(live.status, ShelterStatus::Full);
        let drain = LiveUpdate {
            occupancy: Some(40),
            ..Default::default()
        };
        live.apply(&drain, Some(100));
        assert_eq!(live.status, ShelterStatus::Open);
        // An explicit status wins over the count.
        let explicit = LiveUpdate {
            status: Some(ShelterStatus::Open),
            occupancy: Some(150),
            ..Default::default()
        };
        live.apply(&explicit, Some(100));
        assert_eq!(live.status, ShelterStatus::Open);
        // A closed shelter does not open because a count arrived.
        let mut closed = LiveState::default();
        closed.apply(&drain, Some(100));
        assert_eq!(closed.status, ShelterStatus::Closed);
    }

    #[test]
    fn hazard_set_round_trips() {
        let set: HazardSet = [Hazard::Tsunami, Hazard::Fire].into_iter().collect();
        assert!(set.contains(Hazard::Tsunami));
        assert!(!set.contains(Hazard::Flood));
        assert_eq!(HazardSet::from_bits(set.bits()), set);
        assert_eq!(
            serde_json::to_value(set).unwrap(),
            serde_json::json!(["tsunami", "fire"])
        );
    }
}
