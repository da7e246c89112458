//! People checking in after an incident: their phone numbers and names as
//! typed, made comparable, and the statuses they report.
//!
//! A phone number is the key a family looks someone up by (as on the
//! carriers' disaster message boards), so every way people write one must
//! come out the same: full-width digits, spaces, hyphens, brackets, `+81`,
//! `0081`, the domestic leading 0. Names are matched exactly, but after the
//! differences that are only in the typing are folded away.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

/// A phone number in E.164 form, e.g. `+819012345678`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Phone(String);

/// Why a text is not a phone number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("a phone number is needed")]
    Empty,
    #[error("{0:?} is not allowed in a phone number")]
    Character(char),
    #[error(
        "a Japanese number has 10 digits with the 0 (0767-53-1111), a mobile one 11 (090-1234-5678); this one has {0}"
    )]
    DomesticLength(usize),
    #[error("a number with a country code has 8 to 15 digits after the +; this one has {0}")]
    InternationalLength(usize),
    #[error("a number starts with 0 (e.g. 090…) or with + and a country code (e.g. +81 90…)")]
    Start,
}

impl Phone {
    /// Reads a number as people type it.
    pub fn parse(typed: &str) -> Result<Phone, PhoneError> {
        let text: String = typed.nfkc().collect();
        let mut digits = String::new();
        let mut plus = false;
        for c in text.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if digits.is_empty() && !plus => plus = true,
                // Separators people put between groups (NFKC has already
                // turned full-width ones and the ideographic space into these).
                ' ' | '-' | '(' | ')' | '.' | '/' | '‐' | '‑' | '–' | '—' | '−' | 'ー' =>
                    {}
                other => return Err(PhoneError::Character(other)),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            // 0081 90…: the international prefix dialled from Japan.
            rest.to_owned()
        } else if let Some(national) = digits.strip_prefix('0') {
            format!("81{national}")
        } else {
            return Err(PhoneError::Start);
        };
        // +81 090…: the domestic 0 kept after the country code.
        let international = match international.strip_prefix("810") {
            Some(national) => format!("81{national}"),
            None => international,
        };
        if let Some(national) = international.strip_prefix("81") {
            check_japanese(national)?;
        }
        if !(8..=15).contains(&international.len()) {
            return Err(PhoneError::InternationalLength(international.len()));
        }
        Ok(Phone(format!("+{international}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, all that is ever shown.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

/// Mobile, IP and M2M numbers (070, 080, 090, 050, 020 …) have ten digits
/// after the 0; fixed lines nine.
fn check_japanese(national: &str) -> Result<(), PhoneError> {
    let long = ["70", "80", "90", "50", "20"]
        .iter()
        .any(|p| national.starts_with(p));
    let wanted = if long { 10 } else { 9 };
    if national.len() == wanted {
        Ok(())
    } else {
        Err(PhoneError::DomesticLength(national.len() + 1))
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name folded for exact matching: NFKC (full-width Latin and half-width
/// kana become their usual forms), lower case, and no whitespace at all —
/// "山田 太郎", "山田　太郎" and "山田太郎" are the same person's name.
pub fn name_key(typed: &str) -> String {
    typed
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// A name as it is shown: NFKC, runs of whitespace made one space, trimmed.
pub fn display_name(typed: &str) -> String {
    let text: String = typed.nfkc().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a person reports, several at once as on the carriers' boards.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Safe,
    Injured,
    NeedHelp,
    AtHome,
    AtShelter,
    Evacuating,
    NotInArea,
}

impl Status {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Safe => "safe",
            Status::Injured => "injured",
            Status::NeedHelp => "need_help",
            Status::AtHome => "at_home",
            Status::AtShelter => "at_shelter",
            Status::Evacuating => "evacuating",
            Status::NotInArea => "not_in_area",
        }
    }

    /// Where a person is: at most one of these at a time.
    const PLACES: [Status; 4] = [
        Status::AtHome,
        Status::AtShelter,
        Status::Evacuating,
        Status::NotInArea,
    ];
}

/// Why a set of statuses cannot be recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("choose at least one status")]
    Empty,
    #[error("{0:?} is listed twice")]
    Repeated(Status),
    #[error(
        "{0:?} and {1:?} cannot both be true: a person is in one place (at_home, at_shelter, evacuating or not_in_area)"
    )]
    TwoPlaces(Status, Status),
    #[error("safe and injured contradict each other: choose injured if hurt")]
    SafeAndInjured,
}

/// Checks a reported set and returns it in a fixed order.
pub fn check_statuses(statuses: &[Status]) -> Result<Vec<Status>, StatusError> {
    if statuses.is_empty() {
        return Err(StatusError::Empty);
    }
    let mut sorted = statuses.to_vec();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(StatusError::Repeated(w[0]));
    }
    let places: Vec<Status> = sorted
        .iter()
        .copied()
        .filter(|s| Status::PLACES.contains(s))
        .collect();
    if let [a, b, ..] = places[..] {
        return Err(StatusError::TwoPlaces(a, b));
    }
    if sorted.contains(&Status::Safe) && sorted.contains(&Status::Injured) {
        return Err(StatusError::SafeAndInjured);
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_api_names() {
        use Status::*;
        for s in [
            Safe, Injured, NeedHelp, AtHome, AtShelter, Evacuating, NotInArea,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn phone_numbers_as_people_type_them() {
        let mobile = "+819012345678";
        for typed in [
            "090-1234-5678",
            "09012345678",
            "０９０－１２３４－５６７８", // full-width digits and hyphen
            "０９０ー１２３４ー５６７８", // the long-vowel mark typed as a hyphen
            "090 1234 5678",
            "090　1234　5678", // ideographic spaces
            "(090) 1234-5678",
            "+81 90 1234 5678",
            "+81-90-1234-5678",
            "+81 090 1234 5678", // the domestic 0 kept after +81
            "＋８１９０１２３４５６７８",
            "0081 90 1234 5678", // international prefix from Japan
            " 090.1234.5678 ",
        ] {
            assert_eq!(Phone::parse(typed).unwrap().as_str(), mobile, "{typed:?}");
        }
        // Landlines: 10 digits with the 0.
        assert_eq!(
            Phone::parse("0767-53-1111").unwrap().as_str(),
            "+81767531111"
        );
        assert_eq!(
            Phone::parse("03-1234-5678").unwrap().as_str(),
            "+81312345678"
        );
        // Another country.
        assert_eq!(
            Phone::parse("+1 (415) 555-0100").unwrap().as_str(),
            "+14155550100"
        );
        assert_eq!(Phone::parse("090-1234-5678").unwrap().last4(), "5678");
    }

    #[test]
    fn what_is_not_a_phone_number_says_why() {
        assert_eq!(Phone::parse(" "), Err(PhoneError::Empty));
        assert_eq!(
            Phone::parse("090-1234-567"),
            Err(PhoneError::DomesticLength(10))
        );
        assert_eq!(
            Phone::parse("0767-53-11111"),
            Err(PhoneError::DomesticLength(11))
        );
        assert!(matches!(
            Phone::parse("090-1234"),
            Err(PhoneError::DomesticLength(7))
        ));
        assert!(matches!(Phone::parse("9012345678"), Err(PhoneError::Start)));
        assert!(matches!(
            Phone::parse("090-1234-5678 ext 2"),
            Err(PhoneError::Character('e'))
        ));
        assert!(matches!(
            Phone::parse("+81 90 1234"),
            Err(PhoneError::DomesticLength(7))
        ));
        assert!(matches!(
            Phone::parse("+1234"),
            Err(PhoneError::InternationalLength(4))
        ));
        assert!(matches!(
            Phone::parse("0+90"),
            Err(PhoneError::Character('+'))
        ));
    }

    #[test]
    fn names_fold_what_is_only_typing() {
        let key = name_key("山田 太郎");
        for typed in ["山田太郎", "山田　太郎", " 山田  太郎 ", "山田\t太郎"] {
            assert_eq!(name_key(typed), key, "{typed:?}");
        }
        assert_eq!(
            name_key("ﾔﾏﾀﾞ ﾀﾛｳ"),
            name_key("ヤマダ タロウ"),
            "half-width kana"
        );
        assert_eq!(name_key("ＴＡＲＯ Yamada"), name_key("taro yamada"));
        assert_ne!(name_key("山田太郎"), name_key("山田花子"));
        assert_eq!(display_name("  山田　 太郎 "), "山田 太郎");
    }

    #[test]
    fn statuses_several_at_once_but_not_contradictory() {
        use Status::*;
        assert_eq!(
            check_statuses(&[AtShelter, Safe]).unwrap(),
            vec![Safe, AtShelter]
        );
        assert!(check_statuses(&[Injured, NeedHelp, AtHome]).is_ok());
        assert_eq!(check_statuses(&[]), Err(StatusError::Empty));
        assert_eq!(
            check_statuses(&[Safe, Safe]),
            Err(StatusError::Repeated(Safe))
        );
        assert_eq!(
            check_statuses(&[AtHome, Safe, AtShelter]),
            Err(StatusError::TwoPlaces(AtHome, AtShelter))
        );
        assert_eq!(
            check_statuses(&[NotInArea, Evacuating]),
            Err(StatusError::TwoPlaces(Evacuating, NotInArea))
        );
        assert_eq!(
            check_statuses(&[Injured, Safe]),
            Err(StatusError::SafeAndInjured)
        );
    }
}
