//! Supply distribution points: where water, food, a bath or a phone charge is
//! handed out today, until when, and whether there is still some. Offices
//! and volunteer centres post them; every resident reads them.
//!
//! Opening hours are windows in Japan time (the service's municipalities are
//! Japanese and Japan keeps no daylight saving): every day, some weekdays, or
//! one date; a window that closes before it opens runs past midnight.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use super::municipality::MunicipalityCode;
use super::shelter::LatLon;
use crate::error::FieldError;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_NOTE_CHARS: usize = 300;
pub const MAX_ITEM_CHARS: usize = 40;
pub const MAX_ITEMS: usize = 30;
pub const MAX_WINDOWS: usize = 14;
pub const MAX_WAIT_MINUTES: i32 = 24 * 60;

/// What is handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupplyKind {
    /// 給水
    Water,
    /// 食料
    Food,
    /// 物資
    Goods,
    /// 入浴
    Bath,
    /// 充電
    Charging,
    /// トイレ
    Toilets,
    /// 医療 (first aid)
    FirstAid,
    /// 洗濯
    Laundry,
    Other,
}

impl SupplyKind {
    pub const ALL: [SupplyKind; 9] = [
        SupplyKind::Water,
        SupplyKind::Food,
        SupplyKind::Goods,
        SupplyKind::Bath,
        SupplyKind::Charging,
        SupplyKind::Toilets,
        SupplyKind::FirstAid,
        SupplyKind::Laundry,
        SupplyKind::Other,
    ];

    /// (API code, the word a Japanese municipality's list uses).
    fn words(self) -> (&'static str, &'static str) {
        match self {
            SupplyKind::Water => ("water", "給水"),
            SupplyKind::Food => ("food", "食料"),
            SupplyKind::Goods => ("goods", "物資"),
            SupplyKind::Bath => ("bath", "入浴"),
            SupplyKind::Charging => ("charging", "充電"),
            SupplyKind::Toilets => ("toilets", "トイレ"),
            SupplyKind::FirstAid => ("first_aid", "医療"),
            SupplyKind::Laundry => ("laundry", "洗濯"),
            SupplyKind::Other => ("other", "その他"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.words().0
    }

    /// The API code or the Japanese word.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|k| k.words().0 == s || k.words().1 == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupplyStatus {
    Open,
    /// Open today but not handing out now (run out until the next truck, a break).
    Paused,
    Closed,
}

impl SupplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SupplyStatus::Open => "open",
            SupplyStatus::Paused => "paused",
            SupplyStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "open" | "開設" | "開設中" => Some(SupplyStatus::Open),
            "paused" | "一時停止" => Some(SupplyStatus::Paused),
            "closed" | "終了" | "閉鎖" => Some(SupplyStatus::Closed),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockLevel {
    Plenty,
    Low,
    Out,
}

impl StockLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "plenty" | "十分" | "あり" => Some(StockLevel::Plenty),
            "low" | "残りわずか" | "少" => Some(StockLevel::Low),
            "out" | "なし" | "品切れ" => Some(StockLevel::Out),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    #[default]
    None,
    Short,
    Long,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::None => "none",
            Queue::Short => "short",
            Queue::Long => "long",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Queue::None),
            "short" => Some(Queue::Short),
            "long" => Some(Queue::Long),
            _ => None,
        }
    }
}

/// One item handed out and how much is left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stock {
    /// In the office's words (`2Lペットボトル`, `おにぎり`).
    pub item: String,
    pub level: StockLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }

    pub fn parse(s: &str) -> Option<Day> {
        let s = s.trim().to_ascii_lowercase();
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .position(|d| *d == s)
            .map(|i| Day::ALL[i])
    }
}

/// One opening window, Japan time: on `date` only, else on `days` (every
/// day when empty), from `opens` to `closes` (`HH:MM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Day>,
    #[schema(value_type = String, example = "10:00")]
    #[serde(with = "hhmm")]
    pub opens: NaiveTime,
    #[schema(value_type = String, example = "16:00")]
    #[serde(with = "hhmm")]
    pub closes: NaiveTime,
}

/// Times as `HH:MM`, the way they are posted on a door.
mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_time(&text).ok_or_else(|| D::Error::custom("a time as HH:MM, e.g. 09:30"))
    }
}

pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s: String = s.trim().nfkc().collect();
    NaiveTime::parse_from_str(&s, "%H:%M").ok()
}

impl Window {
    fn applies_on(&self, date: NaiveDate) -> bool {
        match self.date {
            Some(d) => d == date,
            None => self.days.is_empty() || self.days.contains(&Day::of(date)),
        }
    }

    /// Whether `local` (Japan time) falls in this window, counting the part
    /// of yesterday's window that runs past midnight.
    pub fn covers(&self, local: NaiveDateTime) -> bool {
        let (date, time) = (local.date(), local.time());
        let overnight = self.closes <= self.opens;
        let today =
            self.applies_on(date) && time >= self.opens && (overnight || time < self.closes);
        let from_yesterday =
            overnight && time < self.closes && date.pred_opt().is_some_and(|d| self.applies_on(d));
        today || from_yesterday
    }
}

/// Japan time (UTC+9, no daylight saving).
pub fn japan_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&FixedOffset::east_opt(9 * 3600).expect("a valid offset"))
        .naive_local()
}

/// A supply point as stored.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SupplyPoint {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub kind: SupplyKind,
    pub name: String,
    pub at: LatLon,
    pub address: Option<String>,
    pub status: SupplyStatus,
    pub hours: Vec<Window>,
    pub stock: Vec<Stock>,
    pub queue: Queue,
    pub wait_minutes: Option<i32>,
    pub note: Option<String>,
    /// Who posted it (the office or centre), named to every reader.
    pub posted_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: String,
    pub version: i64,
}

impl SupplyPoint {
    /// Handing out now: open, and within a window when hours are given
    /// (none given means for as long as it is open).
    pub fn open_now(&self, now: DateTime<Utc>) -> bool {
        let local = japan_time(now);
        self.status == SupplyStatus::Open
            && (self.hours.is_empty() || self.hours.iter().any(|w| w.covers(local)))
    }

    /// Lists `item` (compared as people type it: width and case folded).
    pub fn has_item(&self, item: &str) -> bool {
        let wanted = fold(item);
        self.stock.iter().any(|s| fold(&s.item) == wanted)
    }
}

fn fold(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_lowercase()
}

/// What an office sends to post or change a supply point; on a change,
/// absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplyChange {
    /// Where it is (JIS code): required to post, never changed after.
    pub municipality: Option<String>,
    pub kind: Option<SupplyKind>,
    pub name: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// An empty text removes it.
    pub address: Option<String>,
    pub status: Option<SupplyStatus>,
    pub hours: Option<Vec<Window>>,
    pub stock: Option<Vec<Stock>>,
    pub queue: Option<Queue>,
    /// Minutes of waiting; `null` or absent keeps it, a negative… is refused.
    pub wait_minutes: Option<i32>,
    /// An empty text removes it.
    pub note: Option<String>,
    /// Still as it says: fresh again.
    #[serde(default)]
    pub confirm: bool,
}

impl SupplyChange {
    /// Every problem of the change, by field; texts trimmed in place.
    pub fn check(&mut self, creating: bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if creating {
            for (missing, field) in [
                (self.municipality.is_none(), "municipality"),
                (self.kind.is_none(), "kind"),
                (self.name.is_none(), "name"),
                (self.lat.is_none(), "lat"),
                (self.lon.is_none(), "lon"),
            ] {
                if missing {
                    errors.push(FieldError::new(field, "required"));
                }
            }
        }
        for (field, text, max) in [
            ("name", &mut self.name, MAX_NAME_CHARS),
            ("address", &mut self.address, MAX_NAME_CHARS * 2),
            ("note", &mut self.note, MAX_NOTE_CHARS),
        ] {
            if let Some(t) = text {
                *t = t.trim().to_owned();
                if t.chars().count() > max {
                    errors.push(FieldError::new(field, format!("at most {max} characters")));
                }
            }
        }
        if !creating && self.municipality.is_some() {
            errors.push(FieldError::new(
                "municipality",
                "a supply point stays in its municipality; post a new one elsewhere",
            ));
        }
        if self.name.as_deref() == Some("") {
            errors.push(FieldError::new("name", "must not be empty"));
        }
        if let (Some(lat), Some(lon)) = (self.lat, self.lon) {
            if let Err(why) = LatLon::new(lat, lon) {
                errors.push(FieldError::new("lat", why));
            }
        } else if self.lat.is_some() != self.lon.is_some() {
            errors.push(FieldError::new("lon", "give lat and lon together"));
        }
        if let Some(hours) = &self.hours
            && hours.len() > MAX_WINDOWS
        {
            errors.push(FieldError::new(
                "hours",
                format!("at most {MAX_WINDOWS} windows"),
            ));
        }
        if let Some(stock) = &mut self.stock {
            if stock.len() > MAX_ITEMS {
                errors.push(FieldError::new(
                    "stock",
                    format!("at most {MAX_ITEMS} items"),
                ));
            }
            for (i, s) in stock.iter_mut().enumerate() {
                s.item = s.item.trim().to_owned();
                let n = s.item.chars().count();
                if n == 0 || n > MAX_ITEM_CHARS {
                    errors.push(FieldError::new(
                        format!("stock[{i}].item"),
                        format!("1 to {MAX_ITEM_CHARS} characters"),
                    ));
                }
            }
        }
        if let Some(w) = self.wait_minutes
            && !(0..=MAX_WAIT_MINUTES).contains(&w)
        {
            errors.push(FieldError::new(
                "wait_minutes",
                format!("from 0 to {MAX_WAIT_MINUTES}"),
            ));
        }
        if !creating && self.is_empty() {
            errors.push(FieldError::new(
                "body",
                "give at least one field to change, or confirm: true",
            ));
        }
        errors
    }

    fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.name.is_none()
            && self.lat.is_none()
            && self.address.is_none()
            && self.status.is_none()
            && self.hours.is_none()
            && self.stock.is_none()
            && self.queue.is_none()
            && self.wait_minutes.is_none()
            && self.note.is_none()
            && !self.confirm
    }

    /// Applies a checked change.
    pub fn apply(&self, p: &mut SupplyPoint) {
        if let Some(k) = self.kind {
            p.kind = k;
        }
        if let Some(n) = &self.name {
            p.name = n.clone();
        }
        if let (Some(lat), Some(lon)) = (self.lat, self.lon) {
            p.at = LatLon { lat, lon };
        }
        if let Some(a) = &self.address {
            p.address = Some(a.clone()).filter(|a| !a.is_empty());
        }
        if let Some(s) = self.status {
            p.status = s;
        }
        if let Some(h) = &self.hours {
            p.hours = h.clone();
        }
        if let Some(s) = &self.stock {
            p.stock = s.clone();
        }
        if let Some(q) = self.queue {
            p.queue = q;
            if q == Queue::None {
                p.wait_minutes = None;
            }
        }
        if let Some(w) = self.wait_minutes {
            p.wait_minutes = Some(w);
        }
        if let Some(n) = &self.note {
            p.note = Some(n.clone()).filter(|n| !n.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn window(date: Option<&str>, days: &[Day], opens: &str, closes: &str) -> Window {
        Window {
            date: date.map(|d| d.parse().unwrap()),
            days: days.to_vec(),
            opens: parse_time(opens).unwrap(),
            closes: parse_time(closes).unwrap(),
        }
    }

    #[test]
    fn windows_cover_their_days_and_hours_in_japan_time() {
        let daily = window(None, &[], "10:00", "16:00");
        assert!(daily.covers(at("2024-01-10 10:00")));
        assert!(!daily.covers(at("2024-01-10 16:00")));
        // 2024-01-13 is a Saturday.
        let weekdays = window(None, &[Day::Mon, Day::Fri], "09:00", "12:00");
        assert!(weekdays.covers(at("2024-01-12 09:30")));
        assert!(!weekdays.covers(at("2024-01-13 09:30")));
        let once = window(Some("2024-01-10"), &[], "13:00", "15:00");
        assert!(once.covers(at("2024-01-10 14:00")));
        assert!(!once.covers(at("2024-01-11 14:00")));
        // A night window runs past midnight into the next day.
        let night = window(Some("2024-01-10"), &[], "20:00", "02:00");
        assert!(night.covers(at("2024-01-10 23:00")));
        assert!(night.covers(at("2024-01-11 01:00")));
        assert!(!night.covers(at("2024-01-11 03:00")));
        // 01:00 UTC is 10:00 in Japan.
        let utc = DateTime::parse_from_rfc3339("2024-01-10T01:00:00Z").unwrap();
        assert!(daily.covers(japan_time(utc.into())));
    }

    #[test]
    fn kinds_and_words_from_a_municipal_list() {
        assert_eq!(SupplyKind::parse("給水"), Some(SupplyKind::Water));
        assert_eq!(SupplyKind::parse("first_aid"), Some(SupplyKind::FirstAid));
        assert_eq!(SupplyKind::parse("ごはん"), None);
        assert_eq!(StockLevel::parse("残りわずか"), Some(StockLevel::Low));
        assert_eq!(parse_time("０９：３０"), parse_time("09:30"));
    }

    #[test]
    fn a_change_names_each_bad_field() {
        let mut c = SupplyChange {
            name: Some("  ".into()),
            lat: Some(95.0),
            lon: Some(136.0),
            wait_minutes: Some(-1),
            stock: Some(vec![Stock {
                item: String::new(),
                level: StockLevel::Low,
            }]),
            ..SupplyChange::default()
        };
        let fields: Vec<String> = c.check(true).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "municipality",
                "kind",
                "name",
                "lat",
                "stock[0].item",
                "wait_minutes"
            ]
        );
        assert_eq!(SupplyChange::default().check(false)[0].field, "body");
    }
}
