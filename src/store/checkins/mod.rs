//! Check-ins, written a batch per transaction: the surge write path's
//! database side (`crate::checkin` gathers the batches).

mod bulk;
mod row_by_row;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::outbox::outbox;
use super::{Store, on_backend};
use crate::domain::person::Status;
use crate::domain::shelter::LatLon;
use crate::events::{self, Addressed, CheckinEvent};

/// A validated check-in, ready to store.
#[derive(Clone, Debug)]
pub struct CheckinRequest {
    pub incident_id: String,
    /// (Idempotency-Key, SHA-256 of the request as understood).
    pub idempotency: Option<(String, String)>,
    /// The one checking in first, then their household.
    pub people: Vec<PersonReport>,
    pub shelter_id: Option<String>,
    /// The shelter's name, for those who hear of the check-in.
    pub shelter_name: Option<String>,
    /// The requester's own message.
    pub message: Option<String>,
    pub location: Option<LatLon>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PersonReport {
    /// Keyed hash of the E.164 number, and its last 4 digits.
    pub phone_hash: String,
    pub phone_last4: String,
    pub name: String,
    pub name_key: String,
    pub statuses: Vec<Status>,
}

/// What a check-in is answered with (and, for a retry, answered again).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    pub checkin_id: String,
    /// Subscribe to `person:<token>` for this person's next check-ins.
    pub person_token: String,
    pub recorded_at: DateTime<Utc>,
    /// The household members recorded with it, each a person of their own.
    pub household: Vec<HouseholdReceipt>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HouseholdReceipt {
    pub name: String,
    pub person_token: String,
}

/// What became of one request of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Committed {
    /// Stored now; for each person, what was stored.
    New {
        receipt: Receipt,
        people: Vec<StoredPerson>,
    },
    /// The key was used before for the same request: its first answer.
    Replayed(Receipt),
    /// The key was used before for another request.
    KeyReused,
    /// There is no such incident; nothing was stored.
    NoIncident,
    /// The incident closed (at this time); nothing was stored.
    Closed(DateTime<Utc>),
}

/// One person of a stored check-in.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPerson {
    pub token: String,
    pub report: PersonReport,
    /// Tokens of the watches (look-ups by this phone or name) waiting for it.
    pub watchers: Vec<String>,
}

/// How a family looks someone up: exactly, never by listing.
#[derive(Clone, Debug)]
pub enum LookUp {
    /// The keyed hash of the E.164 number.
    Phone(String),
    /// The folded name (`domain::person::name_key`).
    Name(String),
}

impl LookUp {
    fn kind(&self) -> &'static str {
        match self {
            LookUp::Phone(_) => "phone",
            LookUp::Name(_) => "name",
        }
    }

    fn key(&self) -> &str {
        match self {
            LookUp::Phone(k) | LookUp::Name(k) => k,
        }
    }
}

/// A person found by a look-up.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PersonView {
    /// Subscribe to `person:<token>` for their next check-ins.
    pub person_token: String,
    pub name: String,
    /// The last 4 digits of their phone; never the number.
    pub phone_last4: Option<String>,
    /// Newest first, at most 20.
    pub checkins: Vec<CheckinView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CheckinView {
    pub statuses: Vec<Status>,
    pub shelter_id: Option<String>,
    /// The shelter's name as the registry has it now (filled by the edge).
    pub shelter_name: Option<String>,
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// For a note imported from PFIF (e.g. Person Finder): its status as
    /// given (`believed_alive`, …) and who wrote it. Such notes carry no
    /// anpi statuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pfif_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CheckinRow {
    statuses: String,
    shelter_id: Option<String>,
    message: Option<String>,
    recorded_at: DateTime<Utc>,
    pfif_status: Option<String>,
    author_name: Option<String>,
}

/// A person's latest check-in, for counting.
#[derive(Clone, Debug)]
pub struct LatestCheckin {
    pub statuses: Vec<Status>,
    pub shelter_id: Option<String>,
    pub location: Option<LatLon>,
}

/// Statuses as stored: comma-separated, in domain order.
pub(super) fn parse_statuses(text: &str) -> Vec<Status> {
    text.split(',')
        .filter_map(|s| serde_json::from_value(serde_json::Value::String(s.to_owned())).ok())
        .collect()
}

impl From<CheckinRow> for CheckinView {
    fn from(r: CheckinRow) -> CheckinView {
        CheckinView {
            shelter_name: None,
            statuses: parse_statuses(&r.statuses),
            shelter_id: r.shelter_id,
            message: r.message,
            recorded_at: r.recorded_at,
            pfif_status: r.pfif_status,
            author_name: r.author_name,
        }
    }
}

/// What a stored check-in tells the live channels: each person's own
/// channel and every family waiting on a look-up that matches them. The
/// message goes only with the one who wrote it, not with household members.
fn checkin_events(
    request: &CheckinRequest,
    receipt: &Receipt,
    people: &[StoredPerson],
) -> Vec<Addressed> {
    people
        .iter()
        .flat_map(|person| {
            let own = person.token == receipt.person_token;
            let event = CheckinEvent {
                person_token: person.token.clone(),
                name: person.report.name.clone(),
                phone_last4: Some(person.report.phone_last4.clone()),
                statuses: person.report.statuses.clone(),
                shelter_id: request.shelter_id.clone(),
                shelter_name: request.shelter_name.clone(),
                message: if own { request.message.clone() } else { None },
                recorded_at: receipt.recorded_at,
                pfif_status: None,
                author_name: None,
            };
            events::checked_in(event, &person.watchers)
        })
        .collect()
}

/// A token for a person: 128 random bits, hex.
pub(super) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

fn status_text(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Stores a batch of check-ins in one transaction: all of them or, when
    /// the transaction fails, none (and nobody is told otherwise).
    pub async fn commit_checkins(
        &self,
        batch: &[CheckinRequest],
    ) -> Result<Vec<Committed>, sqlx::Error> {
        match self {
            Store::Postgres(pool) => bulk::commit_bulk(pool, batch).await,
            Store::Sqlite(pool) => row_by_row::commit_row_by_row(pool, batch).await,
        }
    }

    /// The people an exact look-up finds, with their check-ins.
    pub async fn look_up(
        &self,
        incident_id: &str,
        look_up: &LookUp,
    ) -> Result<Vec<PersonView>, sqlx::Error> {
        on_backend!(self, |pool| {
            let query = match look_up {
                LookUp::Phone(_) => {
                    "select id, token, name, phone_last4 from person \
                     where incident_id = $1 and phone_hash = $2 order by created_at, id limit 50"
                }
                LookUp::Name(_) => {
                    "select id, token, name, phone_last4 from person \
                     where incident_id = $1 and name_key = $2 order by created_at, id limit 50"
                }
            };
            let found: Vec<(String, String, String, Option<String>)> = sqlx::query_as(query)
                .bind(incident_id)
                .bind(look_up.key())
                .fetch_all(pool)
                .await?;
            let mut people = Vec::with_capacity(found.len());
            for (id, person_token, name, phone_last4) in found {
                let rows: Vec<CheckinRow> = sqlx::query_as(
                    "select statuses, shelter_id, message, recorded_at, pfif_status, author_name from checkin \
                     where person_id = $1 order by recorded_at desc, id desc limit 20",
                )
                .bind(&id)
                .fetch_all(pool)
                .await?;
                people.push(PersonView {
                    person_token,
                    name,
                    phone_last4,
                    checkins: rows.into_iter().map(CheckinView::from).collect(),
                });
            }
            Ok(people)
        })
    }

    /// The token told about every later check-in matching the look-up
    /// (made on the first look-up, the same for every later one).
    pub async fn watch_token(
        &self,
        incident_id: &str,
        look_up: &LookUp,
    ) -> Result<String, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query(
                "insert into watch (incident_id, kind, key, token, created_at) values ($1, $2, $3, $4, $5) \
                 on conflict (incident_id, kind, key) do nothing",
            )
            .bind(incident_id)
            .bind(look_up.kind())
            .bind(look_up.key())
            .bind(new_token())
            .bind(super::now())
            .execute(pool)
            .await?;
            sqlx::query_scalar(
                "select token from watch where incident_id = $1 and kind = $2 and key = $3",
            )
            .bind(incident_id)
            .bind(look_up.kind())
            .bind(look_up.key())
            .fetch_one(pool)
            .await
        })
    }

    /// Each person's latest check-in: (statuses, shelter id, place).
    pub async fn latest_checkins(
        &self,
        incident_id: &str,
    ) -> Result<Vec<LatestCheckin>, sqlx::Error> {
        type Row = (String, Option<String>, Option<f64>, Option<f64>);
        let rows: Vec<Row> = on_backend!(self, |pool| {
            sqlx::query_as(
                "select statuses, shelter_id, lat, lon from ( \
                   select statuses, shelter_id, lat, lon, \
                          row_number() over (partition by person_id order by recorded_at desc, id desc) as n \
                   from checkin where incident_id = $1) latest \
                 where n = 1",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(statuses, shelter_id, lat, lon)| LatestCheckin {
                statuses: parse_statuses(&statuses),
                shelter_id,
                location: lat
                    .zip(lon)
                    .and_then(|(lat, lon)| LatLon::new(lat, lon).ok()),
            })
            .collect())
    }

    /// The ids of an incident's stored check-ins (for audits and tests).
    pub async fn checkin_ids(&self, incident_id: &str) -> Result<Vec<String>, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query_scalar("select id from checkin where incident_id = $1")
                .bind(incident_id)
                .fetch_all(pool)
                .await
        })
    }

    /// Check-ins stored for an incident (a count for tests and stats).
    pub async fn checkin_count(&self, incident_id: &str) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query_scalar("select count(*) from checkin where incident_id = $1")
                .bind(incident_id)
                .fetch_one(pool)
                .await
        })
    }
}
