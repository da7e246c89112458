//! Official alerts in CAP 1.2: an office relays one (a prefecture's, the
//! weather service's, its own) and it becomes an announcement of each of its
//! municipalities the alert names, naming the place and the issuer wherever
//! it is shown; every announcement can be read back as CAP and in an Atom
//! feed. An update or cancellation of an alert retires what it replaces.

use chrono::{DateTime, FixedOffset, Utc};

use super::{Services, acting_in};
use crate::cap::{self, Alert, Area, Certainty, Info, MsgType, NamedValue, Scope, Status, Urgency};
use crate::domain::municipality::MunicipalityCode;
use crate::error::{DomainError, FieldError};
use crate::store::{Announcement, NewAnnouncement, Official, Severity};
use crate::usecase::announcements::MAX_TEXT_CHARS;

/// What relaying an alert did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Relayed {
    /// One per municipality the alert names.
    pub posted: Vec<Announcement>,
    /// Those an update or cancellation retired.
    pub retired: Vec<Announcement>,
}

/// An office relays a CAP 1.2 alert to its municipalities.
pub async fn relay(s: &Services, official: &Official, xml: &str) -> Result<Relayed, DomainError> {
    let alert = cap::read(xml).map_err(DomainError::Invalid)?;
    let mut errors = Vec::new();
    if !matches!(alert.status, Status::Actual | Status::Exercise) {
        errors.push(FieldError::new(
            "status",
            "only Actual and Exercise alerts are published",
        ));
    }
    if alert.scope != Scope::Public {
        errors.push(FieldError::new(
            "scope",
            "anpi publishes to everyone: the scope must be Public",
        ));
    }
    if matches!(alert.msg_type, MsgType::Ack | MsgType::Error) {
        errors.push(FieldError::new("msgType", "Alert, Update or Cancel"));
    }
    let retires: Vec<(String, String)> = match alert.msg_type {
        MsgType::Update | MsgType::Cancel => alert
            .references
            .iter()
            .map(|r| (r.sender.clone(), r.identifier.clone()))
            .collect(),
        _ => Vec::new(),
    };
    if alert.msg_type != MsgType::Alert && retires.is_empty() {
        errors.push(FieldError::new(
            "references",
            "an Update or Cancel names the alert it replaces",
        ));
    }
    let japanese = alert
        .infos
        .iter()
        .position(|i| i.language.starts_with("ja"));
    let codes = municipalities(&alert, &mut errors);
    if alert.msg_type != MsgType::Cancel && japanese.is_none() {
        errors.push(FieldError::new(
            "info",
            "an info block in Japanese (language ja-JP) is required",
        ));
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    // A bare cancellation names no place: it retires what it references
    // in the office's own municipalities.
    let scope = if codes.is_empty() {
        official.municipalities.clone()
    } else {
        codes.clone()
    };
    let actor = match scope.first() {
        Some(code) => acting_in(official, code)?,
        None => return Err(DomainError::field("info", "no municipality named")),
    };
    for code in &scope {
        acting_in(official, code)?;
    }
    let retires: Vec<(String, String, MunicipalityCode)> = retires
        .into_iter()
        .flat_map(|(sender, id)| {
            scope
                .iter()
                .map(move |m| (sender.clone(), id.clone(), m.clone()))
        })
        .collect();
    let (posted, retired) = match japanese {
        Some(ja) if alert.msg_type != MsgType::Cancel => {
            let new = announcement_of(&alert, ja, official);
            s.store
                .post_announcements(&actor, &codes, &new, &retires)
                .await?
        }
        _ => {
            let none = NewAnnouncement::default();
            s.store
                .post_announcements(&actor, &[], &none, &retires)
                .await?
        }
    };
    s.live.changed([]);
    Ok(Relayed { posted, retired })
}

/// The municipalities an alert names (geocode `JIS X0402`, in every area of
/// every info): at least one, each a valid code.
fn municipalities(alert: &Alert, errors: &mut Vec<FieldError>) -> Vec<MunicipalityCode> {
    let mut codes: Vec<MunicipalityCode> = Vec::new();
    for (i, info) in alert.infos.iter().enumerate() {
        for (j, area) in info.areas.iter().enumerate() {
            let named: Vec<&NamedValue> = area
                .geocodes
                .iter()
                .filter(|g| g.value_name == cap::JIS_CODE)
                .collect();
            if named.is_empty() {
                errors.push(FieldError::new(
                    format!("info[{i}].area[{j}].geocode"),
                    format!(
                        "name the municipality with a geocode {} (its six-digit code)",
                        cap::JIS_CODE
                    ),
                ));
            }
            for g in named {
                match MunicipalityCode::parse(&g.value) {
                    Ok(code) if !codes.contains(&code) => codes.push(code),
                    Ok(_) => {}
                    Err(e) => errors.push(FieldError::new(
                        format!("info[{i}].area[{j}].geocode"),
                        e.to_string(),
                    )),
                }
            }
        }
    }
    codes
}

/// The announcement an alert becomes: its Japanese (and English) text, and
/// who and where it names.
fn announcement_of(alert: &Alert, ja: usize, official: &Official) -> NewAnnouncement {
    let info = &alert.infos[ja];
    let en = alert.infos.iter().find(|i| i.language.starts_with("en"));
    NewAnnouncement {
        severity: Some(match info.severity {
            cap::Severity::Extreme | cap::Severity::Severe => Severity::Urgent,
            cap::Severity::Moderate => Severity::Warning,
            cap::Severity::Minor | cap::Severity::Unknown => Severity::Info,
        }),
        text: text_of(info),
        text_en: en.map(text_of),
        event: Some(info.event.clone()),
        area_desc: Some(
            info.areas
                .iter()
                .map(|a| a.area_desc.as_str())
                .collect::<Vec<_>>()
                .join("、"),
        ),
        // Who says so: the alert's own issuer, else the office relaying it.
        issuer: Some(
            info.sender_name
                .clone()
                .unwrap_or_else(|| official.name.clone()),
        ),
        expires_at: info.expires.map(|t| t.with_timezone(&Utc)),
        cap_sender: Some(alert.sender.clone()),
        cap_identifier: Some(alert.identifier.clone()),
        cap_xml: Some(cap::write(alert)),
    }
}

/// Headline, description and instruction, as much as an announcement holds.
fn text_of(info: &Info) -> String {
    let parts = [&info.headline, &info.description, &info.instruction];
    let text = parts
        .iter()
        .filter_map(|p| p.as_deref())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let text = if text.is_empty() {
        info.event.clone()
    } else {
        text
    };
    if text.chars().count() <= MAX_TEXT_CHARS {
        text
    } else {
        text.chars().take(MAX_TEXT_CHARS - 1).chain(['…']).collect()
    }
}

/// Japan time, as CAP wants an explicit offset.
fn japan(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&FixedOffset::east_opt(9 * 3600).expect("a valid offset"))
}

/// An announcement as CAP: the alert it came as, else one made from it
/// (`sender` is this service's domain).
pub fn as_cap(a: &Announcement, stored: Option<&str>, sender: &str) -> Alert {
    if let Some(alert) = stored.and_then(|xml| cap::read(xml).ok()) {
        return alert;
    }
    let info = |language: &str, text: &str| Info {
        language: language.to_owned(),
        category: vec![cap::Category::Safety],
        event: a.event.clone().unwrap_or_else(|| {
            if language == "ja-JP" {
                "お知らせ"
            } else {
                "Announcement"
            }
            .to_owned()
        }),
        response_type: Vec::new(),
        urgency: Urgency::Unknown,
        severity: match a.severity {
            Severity::Urgent => cap::Severity::Severe,
            Severity::Warning => cap::Severity::Moderate,
            Severity::Info => cap::Severity::Minor,
        },
        certainty: Certainty::Observed,
        audience: None,
        event_code: Vec::new(),
        effective: None,
        onset: None,
        expires: a.expires_at.map(japan),
        sender_name: Some(a.issuer.clone().unwrap_or_else(|| a.posted_by.clone())),
        headline: Some(
            text.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(140)
                .collect(),
        ),
        description: Some(text.to_owned()),
        instruction: None,
        web: None,
        contact: None,
        parameters: Vec::new(),
        areas: vec![Area {
            area_desc: a
                .area_desc
                .clone()
                .unwrap_or_else(|| format!("{} {}", cap::JIS_CODE, a.municipality)),
            geocodes: vec![NamedValue::new(cap::JIS_CODE, a.municipality.as_str())],
            ..Area::default()
        }],
    };
    let mut infos = vec![info("ja-JP", &a.text)];
    if let Some(en) = &a.text_en {
        infos.push(info("en-US", en));
    }
    Alert {
        identifier: format!("anpi-{}", a.id),
        sender: sender.to_owned(),
        sent: japan(a.posted_at),
        status: Status::Actual,
        msg_type: MsgType::Alert,
        source: None,
        scope: Scope::Public,
        restriction: None,
        addresses: Vec::new(),
        code: Vec::new(),
        note: None,
        references: Vec::new(),
        incidents: Vec::new(),
        infos,
    }
}
