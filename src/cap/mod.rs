//! OASIS Common Alerting Protocol (CAP) 1.2 for anpi.
//!
//! anpi relays *official* alerts — evacuation orders, water-supply notices,
//! weather warnings — and CAP is the format they travel in. An official alert
//! is only useful when it says **where** it applies (`areaDesc`, plus JIS
//! X0402 municipality codes in `geocode`) and **who** issued it
//! (`senderName`, e.g. 七尾市災害対策本部), so this module keeps both
//! prominent: [`Alert::title`] and every Atom entry start with place and issuer.
//!
//! - [`read`](fn@read) parses and checks a CAP 1.2 document (DTDs and entities refused).
//! - [`validate`] checks an [`Alert`] built in code before [`write`](fn@write) emits it.
//! - [`write`](fn@write) emits CAP 1.2 XML in schema order; [`atom`] an Atom 1.0 feed.
//!
//! Times are `DateTime<FixedOffset>`, so the offset the issuer wrote is kept
//! (`+09:00` stays `+09:00`). CAP forbids `Z` and fractional seconds: UTC is
//! written `-00:00`, and sub-second parts are dropped on write.
//! Error paths use CAP's XML names, e.g. `info[0].area[0].areaDesc`.

use chrono::{DateTime, FixedOffset, TimeZone};
use serde::{Deserialize, Serialize};

mod check;
mod read;
mod write;

pub use check::{check_circle, check_polygon, format_time, parse_time, validate};
pub use read::read;
pub use write::{FeedMeta, atom, write};

/// XML namespace of CAP 1.2 documents.
pub const CAP_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// `geocode` valueName for Japanese municipality codes (6 digits, e.g. 172022 = 七尾市).
pub const JIS_CODE: &str = "JIS X0402";

/// CAP's closed vocabularies: each variant has exactly one XML word.
pub trait CapWord: Sized + Copy + 'static {
    const ALL: &'static [Self];
    /// The exact word CAP uses in XML, e.g. `"Extreme"`.
    fn as_cap(self) -> &'static str;
    /// Parses CAP's exact, case-sensitive word.
    fn from_cap(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_cap() == word)
    }
}

macro_rules! cap_words {
    ($(#[$doc:meta])* $name:ident { $($var:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($var),+ }

        impl CapWord for $name {
            const ALL: &'static [Self] = &[$(Self::$var),+];
            fn as_cap(self) -> &'static str {
                match self { $(Self::$var => $word),+ }
            }
        }
    };
}

cap_words!(Status {
    Actual = "Actual", Exercise = "Exercise", System = "System", Test = "Test", Draft = "Draft",
});
cap_words!(MsgType {
    Alert = "Alert", Update = "Update", Cancel = "Cancel", Ack = "Ack", Error = "Error",
});
cap_words!(Scope { Public = "Public", Restricted = "Restricted", Private = "Private" });
cap_words!(Category {
    Geo = "Geo", Met = "Met", Safety = "Safety", Security = "Security", Rescue = "Rescue",
    Fire = "Fire", Health = "Health", Env = "Env", Transport = "Transport", Infra = "Infra",
    Cbrne = "CBRNE", Other = "Other",
});
cap_words!(ResponseType {
    Shelter = "Shelter", Evacuate = "Evacuate", Prepare = "Prepare", Execute = "Execute",
    Avoid = "Avoid", Monitor = "Monitor", Assess = "Assess", AllClear = "AllClear", None = "None",
});
cap_words!(Urgency {
    Immediate = "Immediate", Expected = "Expected", Future = "Future", Past = "Past",
    Unknown = "Unknown",
});
cap_words!(Severity {
    Extreme = "Extreme", Severe = "Severe", Moderate = "Moderate", Minor = "Minor",
    Unknown = "Unknown",
});
cap_words!(Certainty {
    Observed = "Observed", Likely = "Likely", Possible = "Possible", Unlikely = "Unlikely",
    Unknown = "Unknown",
});

/// A CAP message: envelope fields plus one `info` block per language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub identifier: String,
    pub sender: String,
    pub sent: DateTime<FixedOffset>,
    pub status: Status,
    pub msg_type: MsgType,
    pub source: Option<String>,
    pub scope: Scope,
    pub restriction: Option<String>,
    /// CAP's space-separated list; entries with spaces are quoted on write.
    pub addresses: Vec<String>,
    pub code: Vec<String>,
    pub note: Option<String>,
    pub references: Vec<Reference>,
    /// Same list syntax as `addresses`.
    pub incidents: Vec<String>,
    pub infos: Vec<Info>,
}

/// An earlier message this one updates or cancels (`sender,identifier,sent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub sender: String,
    pub identifier: String,
    pub sent: DateTime<FixedOffset>,
}

/// CAP's `valueName`/`value` pairs (eventCode, parameter, geocode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedValue {
    pub value_name: String,
    pub value: String,
}

impl NamedValue {
    pub fn new(value_name: impl Into<String>, value: impl Into<String>) -> Self {
        NamedValue {
            value_name: value_name.into(),
            value: value.into(),
        }
    }
}

/// The alert in one language. `resource` elements are not modelled (skipped on read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// RFC 3066 tag; CAP's default `en-US` is filled in when absent.
    pub language: String,
    pub category: Vec<Category>,
    pub event: String,
    pub response_type: Vec<ResponseType>,
    pub urgency: Urgency,
    pub severity: Severity,
    pub certainty: Certainty,
    pub audience: Option<String>,
    pub event_code: Vec<NamedValue>,
    pub effective: Option<DateTime<FixedOffset>>,
    pub onset: Option<DateTime<FixedOffset>>,
    pub expires: Option<DateTime<FixedOffset>>,
    /// Human-readable issuer, e.g. 七尾市災害対策本部.
    pub sender_name: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub web: Option<String>,
    pub contact: Option<String>,
    pub parameters: Vec<NamedValue>,
    pub areas: Vec<Area>,
}

/// A place the info applies to. Polygons/circles are CAP's strings, checked by [`validate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Area {
    pub area_desc: String,
    /// `"lat,lon lat,lon …"`, ≥ 4 points, first == last (WGS 84).
    pub polygons: Vec<String>,
    /// `"lat,lon radius_km"`.
    pub circles: Vec<String>,
    pub geocodes: Vec<NamedValue>,
    /// Feet above mean sea level, as CAP defines it.
    pub altitude: Option<f64>,
    pub ceiling: Option<f64>,
}

impl Alert {
    /// True when every info has an `expires` at or before `now`. An alert with
    /// no info, or any info without `expires`, never expires by itself.
    pub fn is_expired<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> bool {
        let expired = |i: &Info| i.expires.is_some_and(|e| e <= *now);
        !self.infos.is_empty() && self.infos.iter().all(expired)
    }

    /// Distinct geocode values under `value_name` (e.g. [`JIS_CODE`]) across all infos, in order.
    pub fn geocode_values(&self, value_name: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let all = self.infos.iter().flat_map(|i| &i.areas);
        for g in all.flat_map(|a| &a.geocodes) {
            if g.value_name == value_name && !out.contains(&g.value.as_str()) {
                out.push(&g.value);
            }
        }
        out
    }

    /// `[place] issuer: headline` from the first info, so nobody reads an
    /// alert without where and who. Falls back to `event` and `sender`.
    pub fn title(&self) -> String {
        let Some(info) = self.infos.first() else {
            let kind = self.msg_type.as_cap();
            return format!("{kind} {} ({})", self.identifier, self.sender);
        };
        let who = info.sender_name.as_deref().unwrap_or(&self.sender);
        let what = info.headline.as_deref().unwrap_or(&info.event);
        let places: Vec<&str> = info.areas.iter().map(|a| a.area_desc.as_str()).collect();
        if places.is_empty() {
            format!("{who}: {what}")
        } else {
            format!("[{}] {who}: {what}", places.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_both_ways() {
        for c in Category::ALL {
            assert_eq!(Category::from_cap(c.as_cap()), Some(*c));
        }
        assert_eq!(Category::Cbrne.as_cap(), "CBRNE");
        assert_eq!(
            ResponseType::from_cap("AllClear"),
            Some(ResponseType::AllClear)
        );
        assert_eq!(Severity::from_cap("extreme"), None);
    }
}
