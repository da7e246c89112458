//! Announcements: what an office tells everyone in its municipality.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::outbox::outbox;
use super::{Actor, Store, audit, on_backend};
use crate::domain::municipality::MunicipalityCode;

/// How loudly residents are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Urgent,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Urgent => "urgent",
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Announcement {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub severity: Severity,
    /// Japanese (or whatever the office wrote).
    pub text: String,
    /// English, when the office gave it.
    pub text_en: Option<String>,
    pub posted_at: DateTime<Utc>,
    /// The office, as its token is named (for a relayed alert: who relayed it).
    pub posted_by: String,
    /// A relayed CAP alert's event (`避難指示`).
    pub event: Option<String>,
    /// A relayed CAP alert's place in its own words (`石川県七尾市`).
    pub area_desc: Option<String>,
    /// A relayed CAP alert's issuer (`senderName`), e.g. a prefecture or
    /// the weather service: who says so.
    pub issuer: Option<String>,
    /// After this it is no longer shown (kept in the record).
    pub expires_at: Option<DateTime<Utc>>,
    /// Retired by an update or cancellation of its alert (kept in the record).
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The CAP alert it came as: sender and identifier.
    pub cap_sender: Option<String>,
    pub cap_identifier: Option<String>,
}

/// What a new announcement says; the store adds id, time and who.
#[derive(Clone, Debug, Default)]
pub struct NewAnnouncement {
    pub severity: Option<Severity>,
    pub text: String,
    pub text_en: Option<String>,
    pub event: Option<String>,
    pub area_desc: Option<String>,
    pub issuer: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub cap_sender: Option<String>,
    pub cap_identifier: Option<String>,
    /// The alert as received (normalised), served as it came.
    pub cap_xml: Option<String>,
}

macro_rules! announcement_columns {
    () => {
        "id, municipality, severity, text, text_en, posted_at, posted_by, event, area_desc, \
         issuer, expires_at, cancelled_at, cap_sender, cap_identifier"
    };
}

/// A municipality's announcements in force ($1 municipality, $2 limit, $3
/// now): not retired, not expired, newest first.
macro_rules! in_force {
    () => {
        " from announcement where municipality = $1 and cancelled_at is null \
         and (expires_at is null or expires_at > $3) order by posted_at desc, id desc limit $2"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    municipality: String,
    severity: String,
    text: String,
    text_en: Option<String>,
    posted_at: DateTime<Utc>,
    posted_by: String,
    event: Option<String>,
    area_desc: Option<String>,
    issuer: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    cap_sender: Option<String>,
    cap_identifier: Option<String>,
}

/// A row and the CAP document it came as.
#[derive(sqlx::FromRow)]
struct WithXml {
    #[sqlx(flatten)]
    row: Row,
    cap_xml: Option<String>,
}

impl TryFrom<Row> for Announcement {
    type Error = anyhow::Error;
    fn try_from(r: Row) -> anyhow::Result<Announcement> {
        Ok(Announcement {
            id: r.id,
            municipality: MunicipalityCode::parse(&r.municipality)?,
            severity: serde_json::from_value(serde_json::Value::String(r.severity))?,
            text: r.text,
            text_en: r.text_en,
            posted_at: r.posted_at,
            posted_by: r.posted_by,
            event: r.event,
            area_desc: r.area_desc,
            issuer: r.issuer,
            expires_at: r.expires_at,
            cancelled_at: r.cancelled_at,
            cap_sender: r.cap_sender,
            cap_identifier: r.cap_identifier,
        })
    }
}

impl Store {
    /// Stores announcements (one per municipality) with their audit rows,
    /// and retires those of the alerts `retires` names (sender, identifier,
    /// in that municipality), all in one transaction; every change goes live.
    pub async fn post_announcements(
        &self,
        actor: &Actor,
        municipalities: &[MunicipalityCode],
        new: &NewAnnouncement,
        retires: &[(String, String, MunicipalityCode)],
    ) -> Result<(Vec<Announcement>, Vec<Announcement>), sqlx::Error> {
        let now = super::now();
        let posted: Vec<Announcement> = municipalities
            .iter()
            .map(|m| Announcement {
                id: uuid::Uuid::now_v7().to_string(),
                municipality: m.clone(),
                severity: new.severity.unwrap_or(Severity::Info),
                text: new.text.clone(),
                text_en: new.text_en.clone(),
                posted_at: now,
                posted_by: actor.display_name(),
                event: new.event.clone(),
                area_desc: new.area_desc.clone(),
                issuer: new.issuer.clone(),
                expires_at: new.expires_at,
                cancelled_at: None,
                cap_sender: new.cap_sender.clone(),
                cap_identifier: new.cap_identifier.clone(),
            })
            .collect();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut retired = Vec::new();
            for (sender, identifier, municipality) in retires {
                let rows: Vec<Row> = sqlx::query_as(concat!(
                    "update announcement set cancelled_at = $1 \
                     where cap_sender = $2 and cap_identifier = $3 and municipality = $4 \
                     and cancelled_at is null returning ",
                    announcement_columns!()
                ))
                .bind(now)
                .bind(sender)
                .bind(identifier)
                .bind(municipality.as_str())
                .fetch_all(&mut *tx)
                .await?;
                for row in rows {
                    let a =
                        Announcement::try_from(row).map_err(|e| sqlx::Error::Decode(e.into()))?;
                    audit!(
                        &mut *tx,
                        actor,
                        now,
                        "announcement.retire",
                        &a.id,
                        None::<&Announcement>,
                        Some(&a)
                    )?;
                    outbox!(&mut *tx, &crate::events::announced(&a))?;
                    retired.push(a);
                }
            }
            for a in &posted {
                sqlx::query(
                    "insert into announcement (id, municipality, severity, text, posted_at, posted_by, \
                     text_en, event, area_desc, issuer, expires_at, cap_sender, cap_identifier, cap_xml) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&a.id)
                .bind(a.municipality.as_str())
                .bind(a.severity.as_str())
                .bind(&a.text)
                .bind(a.posted_at)
                .bind(&a.posted_by)
                .bind(&a.text_en)
                .bind(&a.event)
                .bind(&a.area_desc)
                .bind(&a.issuer)
                .bind(a.expires_at)
                .bind(&a.cap_sender)
                .bind(&a.cap_identifier)
                .bind(&new.cap_xml)
                .execute(&mut *tx)
                .await?;
                audit!(
                    &mut *tx,
                    actor,
                    now,
                    "announcement.post",
                    &a.id,
                    None::<&Announcement>,
                    Some(a)
                )?;
                outbox!(&mut *tx, &crate::events::announced(a))?;
            }
            tx.commit().await?;
            Ok((posted, retired))
        })
    }

    /// A municipality's announcements in force (not retired, not expired),
    /// newest first.
    pub async fn announcements(
        &self,
        municipality: &MunicipalityCode,
        limit: u32,
    ) -> anyhow::Result<Vec<Announcement>> {
        let rows: Vec<Row> = on_backend!(self, |pool| {
            sqlx::query_as(concat!("select ", announcement_columns!(), in_force!()))
                .bind(municipality.as_str())
                .bind(i64::from(limit))
                .bind(super::now())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Announcement::try_from).collect()
    }

    /// The same with the CAP documents they came as (for the Atom feed).
    pub async fn announcements_with_documents(
        &self,
        municipality: &MunicipalityCode,
        limit: u32,
    ) -> anyhow::Result<Vec<(Announcement, Option<String>)>> {
        let rows: Vec<WithXml> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                announcement_columns!(),
                ", cap_xml",
                in_force!()
            ))
            .bind(municipality.as_str())
            .bind(i64::from(limit))
            .bind(super::now())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|r| Ok((Announcement::try_from(r.row)?, r.cap_xml)))
            .collect()
    }

    /// One announcement, retired or not, and the CAP document it came as.
    pub async fn announcement(
        &self,
        id: &str,
    ) -> anyhow::Result<Option<(Announcement, Option<String>)>> {
        let found: Option<WithXml> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                announcement_columns!(),
                ", cap_xml from announcement where id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        found
            .map(|f| Ok((Announcement::try_from(f.row)?, f.cap_xml)))
            .transpose()
    }
}
