//! Aid: what people ask for and offer, and the rules that keep a request's
//! claims within its quantity. The categories and their ja/en labels are
//! documented in `docs/aid.md` and listed by `GET /v1/aid/categories`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// What kind of help: Facebook Community Help's categories and what
/// Japanese shelters ask for after an earthquake, in one fixed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Water,
    Food,
    /// Formula, baby food, diapers.
    BabySupplies,
    Medicine,
    /// Soap, sanitary items, masks, toilet bags.
    Hygiene,
    BlanketsClothing,
    Fuel,
    Transport,
    PetSupplies,
    /// Repair, mud-out and clean-up labour (泥出し).
    CleanUp,
    /// Looking after the elderly, the sick, children.
    Care,
    Interpreting,
    Shelter,
    Other,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::Water,
        Category::Food,
        Category::BabySupplies,
        Category::Medicine,
        Category::Hygiene,
        Category::BlanketsClothing,
        Category::Fuel,
        Category::Transport,
        Category::PetSupplies,
        Category::CleanUp,
        Category::Care,
        Category::Interpreting,
        Category::Shelter,
        Category::Other,
    ];

    /// The code in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Water => "water",
            Category::Food => "food",
            Category::BabySupplies => "baby_supplies",
            Category::Medicine => "medicine",
            Category::Hygiene => "hygiene",
            Category::BlanketsClothing => "blankets_clothing",
            Category::Fuel => "fuel",
            Category::Transport => "transport",
            Category::PetSupplies => "pet_supplies",
            Category::CleanUp => "clean_up",
            Category::Care => "care",
            Category::Interpreting => "interpreting",
            Category::Shelter => "shelter",
            Category::Other => "other",
        }
    }

    /// (Japanese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Category::Water => ("水", "Water"),
            Category::Food => ("食料", "Food"),
            Category::BabySupplies => (
                "乳幼児用品（ミルク・おむつ）",
                "Baby supplies (formula, diapers)",
            ),
            Category::Medicine => ("医薬品", "Medicine"),
            Category::Hygiene => ("衛生用品", "Hygiene"),
            Category::BlanketsClothing => ("毛布・衣類", "Blankets and clothing"),
            Category::Fuel => ("燃料", "Fuel"),
            Category::Transport => ("移動・輸送", "Transport"),
            Category::PetSupplies => ("ペット用品", "Pet supplies"),
            Category::CleanUp => ("片付け・泥出し・修理", "Clean-up, mud-out, repair"),
            Category::Care => ("介護・見守り", "Care"),
            Category::Interpreting => ("通訳", "Interpreting"),
            Category::Shelter => ("住まい・宿泊", "A place to stay"),
            Category::Other => ("その他", "Other"),
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How soon help is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Low,
    Normal,
    High,
    /// Life or health at stake within hours.
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Urgency> {
        [
            Urgency::Low,
            Urgency::Normal,
            Urgency::High,
            Urgency::Critical,
        ]
        .into_iter()
        .find(|u| u.as_str() == s)
    }

    /// Its weight in the matching score (docs/aid.md).
    pub fn weight(self) -> f64 {
        match self {
            Urgency::Low => 0.25,
            Urgency::Normal => 0.5,
            Urgency::High => 0.75,
            Urgency::Critical => 1.0,
        }
    }
}

/// Where a request stands. Open, partially claimed and claimed follow from
/// the claimed quantity; the others are set by a person or the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    PartiallyClaimed,
    Claimed,
    /// The requester confirmed receipt.
    Fulfilled,
    Withdrawn,
    /// Open too long without reconfirmation.
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::PartiallyClaimed => "partially_claimed",
            RequestStatus::Claimed => "claimed",
            RequestStatus::Fulfilled => "fulfilled",
            RequestStatus::Withdrawn => "withdrawn",
            RequestStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        [
            RequestStatus::Open,
            RequestStatus::PartiallyClaimed,
            RequestStatus::Claimed,
            RequestStatus::Fulfilled,
            RequestStatus::Withdrawn,
            RequestStatus::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Still waiting for someone (volunteers see it, claims may be made).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RequestStatus::Open | RequestStatus::PartiallyClaimed | RequestStatus::Claimed
        )
    }

    /// The status that `claimed` of `quantity` units means for an active request.
    pub fn from_claimed(claimed: i32, quantity: i32) -> RequestStatus {
        if claimed <= 0 {
            RequestStatus::Open
        } else if claimed < quantity {
            RequestStatus::PartiallyClaimed
        } else {
            RequestStatus::Claimed
        }
    }
}

/// Where a claim stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Taken, not yet delivered: counts against the request's quantity.
    Live,
    /// The volunteer says it was handed over.
    Delivered,
    /// The requester confirmed receipt.
    Received,
    /// Given back by the volunteer, with a reason.
    Released,
    /// Not delivered in time: its quantity went back to the request.
    Lapsed,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Live => "live",
            ClaimStatus::Delivered => "delivered",
            ClaimStatus::Received => "received",
            ClaimStatus::Released => "released",
            ClaimStatus::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<ClaimStatus> {
        [
            ClaimStatus::Live,
            ClaimStatus::Delivered,
            ClaimStatus::Received,
            ClaimStatus::Released,
            ClaimStatus::Lapsed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// Why someone reports a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    Abuse,
    Duplicate,
    WrongPlace,
    AlreadyResolved,
}

impl ReportReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::Abuse => "abuse",
            ReportReason::Duplicate => "duplicate",
            ReportReason::WrongPlace => "wrong_place",
            ReportReason::AlreadyResolved => "already_resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ReportReason> {
        [
            ReportReason::Spam,
            ReportReason::Abuse,
            ReportReason::Duplicate,
            ReportReason::WrongPlace,
            ReportReason::AlreadyResolved,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// One line of what is asked for or offered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    /// What, as the person wrote it ("2L bottles", "粉ミルク").
    pub name: String,
    pub quantity: i32,
    /// "bottles", "packs", "people", "hours"…
    #[serde(default)]
    pub unit: String,
}

/// Most lines one request or offer holds.
pub const MAX_ITEMS: usize = 20;
/// Largest quantity of one line: more than any household or shelter asks.
pub const MAX_ITEM_QUANTITY: i32 = 100_000;
/// The note: one or two sentences on a phone.
pub const MAX_NOTE_CHARS: usize = 200;
/// An item's name or unit.
const MAX_ITEM_TEXT: usize = 60;

/// Checks `items` (at `field`) and returns their total quantity.
pub fn check_items(field: &str, items: &[Item], errors: &mut Vec<FieldError>) -> i32 {
    if items.is_empty() || items.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            field,
            format!("1 to {MAX_ITEMS} items, each with a name and a quantity"),
        ));
        return 0;
    }
    let mut total: i32 = 0;
    for (i, item) in items.iter().enumerate() {
        let name = item.name.trim();
        if name.is_empty() || name.chars().count() > MAX_ITEM_TEXT {
            errors.push(FieldError::new(
                format!("{field}[{i}].name"),
                format!("1 to {MAX_ITEM_TEXT} characters"),
            ));
        }
        if item.unit.chars().count() > MAX_ITEM_TEXT {
            errors.push(FieldError::new(
                format!("{field}[{i}].unit"),
                format!("at most {MAX_ITEM_TEXT} characters"),
            ));
        }
        if !(1..=MAX_ITEM_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("{field}[{i}].quantity"),
                format!("a whole number from 1 to {MAX_ITEM_QUANTITY}"),
            ));
        } else {
            total = total.saturating_add(item.quantity);
        }
    }
    total
}

/// Items with their text trimmed.
pub fn tidy_items(items: Vec<Item>) -> Vec<Item> {
    items
        .into_iter()
        .map(|i| Item {
            name: i.name.trim().to_owned(),
            quantity: i.quantity,
            unit: i.unit.trim().to_owned(),
        })
        .collect()
}

/// Checks an optional note; `None` for an empty one.
pub fn check_note(note: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let note = note.map(str::trim).filter(|n| !n.is_empty())?;
    if note.chars().count() > MAX_NOTE_CHARS {
        errors.push(FieldError::new(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Some(note.to_owned())
}

/// A request and an offer, as the ranking sees them.
#[derive(Clone, Copy, Debug)]
pub struct Pairing {
    pub request_category: Category,
    pub offer_category: Category,
    pub distance_m: f64,
    /// How far the offer's holder can go.
    pub reach_m: f64,
    /// Units of the request nobody has claimed.
    pub remaining: i32,
    pub offered: i32,
    pub urgency: Urgency,
    /// Since the request was posted.
    pub age_hours: f64,
}

/// How well an offer fits a request, 0 to 1 (documented in `docs/aid.md`):
/// category fit 0.4 (same category 1, "other" on either side 0.25),
/// nearness within the offer's reach 0.25, the share of the remaining
/// quantity the offer covers 0.15, the request's urgency 0.1 and its age
/// 0.1 (a day old or more counts fully: the longest waiting first).
pub fn match_score(p: &Pairing) -> Option<f64> {
    let Pairing {
        request_category,
        offer_category,
        distance_m,
        reach_m,
        remaining,
        offered,
        urgency,
        age_hours,
    } = *p;
    let category = if request_category == offer_category {
        1.0
    } else if request_category == Category::Other || offer_category == Category::Other {
        0.25
    } else {
        return None;
    };
    if distance_m > reach_m || remaining <= 0 {
        return None;
    }
    let nearness = if reach_m > 0.0 {
        1.0 - distance_m / reach_m
    } else {
        1.0
    };
    let covered = f64::from(offered.min(remaining)) / f64::from(remaining);
    let age = (age_hours / 24.0).clamp(0.0, 1.0);
    Some(0.4 * category + 0.25 * nearness + 0.15 * covered + 0.1 * urgency.weight() + 0.1 * age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_every_category_has_both_labels() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            let (ja, en) = c.labels();
            assert!(!ja.is_empty() && !en.is_empty());
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
        assert_eq!(Category::parse("weapons"), None);
    }

    #[test]
    fn status_follows_the_claimed_quantity() {
        assert_eq!(RequestStatus::from_claimed(0, 10), RequestStatus::Open);
        assert_eq!(
            RequestStatus::from_claimed(3, 10),
            RequestStatus::PartiallyClaimed
        );
        assert_eq!(RequestStatus::from_claimed(10, 10), RequestStatus::Claimed);
    }

    #[test]
    fn items_are_checked_line_by_line() {
        let mut errors = Vec::new();
        let items = vec![
            Item {
                name: "水 2L".into(),
                quantity: 6,
                unit: "本".into(),
            },
            Item {
                name: " ".into(),
                quantity: 0,
                unit: String::new(),
            },
        ];
        assert_eq!(check_items("items", &items, &mut errors), 6);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[1].name", "items[1].quantity"]);
        let mut errors = Vec::new();
        check_items("items", &[], &mut errors);
        assert_eq!(errors[0].field, "items");
    }

    fn pairing() -> Pairing {
        Pairing {
            request_category: Category::Water,
            offer_category: Category::Water,
            distance_m: 500.0,
            reach_m: 10_000.0,
            remaining: 10,
            offered: 10,
            urgency: Urgency::Normal,
            age_hours: 1.0,
        }
    }

    #[test]
    fn the_ranking_prefers_fit_then_nearness_then_coverage() {
        let score = |cat, d, offered| {
            match_score(&Pairing {
                offer_category: cat,
                distance_m: d,
                offered,
                ..pairing()
            })
        };
        let same_near_full = score(Category::Water, 500.0, 10).unwrap();
        let same_far_full = score(Category::Water, 9_000.0, 10).unwrap();
        let same_near_part = score(Category::Water, 500.0, 2).unwrap();
        let other_near_full = score(Category::Other, 500.0, 10).unwrap();
        assert!(same_near_full > same_near_part);
        assert!(same_near_part > same_far_full);
        assert!(same_far_full > other_near_full);
        assert_eq!(score(Category::Food, 500.0, 10), None, "another category");
        assert_eq!(score(Category::Water, 10_001.0, 10), None, "out of reach");
        // Urgency and age lift a request for the same offer.
        let old_critical = match_score(&Pairing {
            urgency: Urgency::Critical,
            age_hours: 30.0,
            ..pairing()
        })
        .unwrap();
        assert!(old_critical > same_near_full);
    }
}
