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
    /// The office, as its token is named.
    pub posted_by: String,
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
        })
    }
}

impl Store {
    /// Stores an announcement (and its audit row) in one transaction.
    pub async fn post_announcement(
        &self,
        actor: &Actor,
        municipality: &MunicipalityCode,
        severity: Severity,
        text: &str,
        text_en: Option<&str>,
    ) -> Result<Announcement, sqlx::Error> {
        let posted = Announcement {
            id: uuid::Uuid::now_v7().to_string(),
            municipality: municipality.clone(),
            severity,
            text: text.to_owned(),
            text_en: text_en.map(str::to_owned),
            posted_at: super::now(),
            posted_by: actor.display_name(),
        };
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into announcement (id, municipality, severity, text, posted_at, posted_by, text_en) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&posted.id)
            .bind(municipality.as_str())
            .bind(severity.as_str())
            .bind(text)
            .bind(posted.posted_at)
            .bind(&posted.posted_by)
            .bind(text_en)
            .execute(&mut *tx)
            .await?;
            audit!(
                &mut *tx,
                actor,
                posted.posted_at,
                "announcement.post",
                &posted.id,
                None::<&Announcement>,
                Some(&posted),
            )?;
            outbox!(&mut *tx, &crate::events::announced(&posted))?;
            tx.commit().await?;
            Ok(posted)
        })
    }

    /// A municipality's announcements, newest first.
    pub async fn announcements(
        &self,
        municipality: &MunicipalityCode,
        limit: u32,
    ) -> anyhow::Result<Vec<Announcement>> {
        let rows: Vec<Row> = on_backend!(self, |pool| {
            sqlx::query_as(
                "select id, municipality, severity, text, text_en, posted_at, posted_by from announcement \
                 where municipality = $1 order by posted_at desc, id desc limit $2",
            )
            .bind(municipality.as_str())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Announcement::try_from).collect()
    }
}
