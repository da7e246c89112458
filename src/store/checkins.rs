//! Check-ins, written a batch per transaction: the surge write path's
//! database side (`crate::checkin` gathers the batches).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Store, on_backend};
use crate::domain::person::Status;
use crate::domain::shelter::LatLon;

/// A validated check-in, ready to store.
#[derive(Clone, Debug)]
pub struct CheckinRequest {
    pub incident_id: String,
    /// (Idempotency-Key, SHA-256 of the request as understood).
    pub idempotency: Option<(String, String)>,
    /// The one checking in first, then their household.
    pub people: Vec<PersonReport>,
    pub shelter_id: Option<String>,
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
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct CheckinRow {
    statuses: String,
    shelter_id: Option<String>,
    message: Option<String>,
    recorded_at: DateTime<Utc>,
}

/// A person's latest check-in, for counting.
#[derive(Clone, Debug)]
pub struct LatestCheckin {
    pub statuses: Vec<Status>,
    pub shelter_id: Option<String>,
    pub location: Option<LatLon>,
}

/// Statuses as stored: comma-separated, in domain order.
fn parse_statuses(text: &str) -> Vec<Status> {
    text.split(',')
        .filter_map(|s| serde_json::from_value(serde_json::Value::String(s.to_owned())).ok())
        .collect()
}

impl From<CheckinRow> for CheckinView {
    fn from(r: CheckinRow) -> CheckinView {
        CheckinView {
            statuses: parse_statuses(&r.statuses),
            shelter_id: r.shelter_id,
            message: r.message,
            recorded_at: r.recorded_at,
        }
    }
}

/// A token for a person: 128 random bits, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

fn status_text(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
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
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Write first, so the transaction holds the write lock before it
            // reads (SQLite cannot upgrade a read once another wrote).
            let incidents: std::collections::BTreeSet<&str> =
                batch.iter().map(|r| r.incident_id.as_str()).collect();
            for id in incidents {
                sqlx::query("update incident set name = name where id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut outcomes = Vec::with_capacity(batch.len());
            for request in batch {
                if let Some((key, hash)) = &request.idempotency {
                    let first: Option<(String, String)> = sqlx::query_as(
                        "select request_hash, response from idempotency where incident_id = $1 and key = $2",
                    )
                    .bind(&request.incident_id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((first_hash, response)) = first {
                        outcomes.push(match serde_json::from_str(&response) {
                            Ok(receipt) if &first_hash == hash => Committed::Replayed(receipt),
                            _ => Committed::KeyReused,
                        });
                        continue;
                    }
                }
                let checkin_id = uuid::Uuid::now_v7().to_string();
                let mut people = Vec::with_capacity(request.people.len());
                for (i, person) in request.people.iter().enumerate() {
                    let known: Option<(String, String)> = sqlx::query_as(
                        "select id, token from person where incident_id = $1 and phone_hash = $2 and name_key = $3",
                    )
                    .bind(&request.incident_id)
                    .bind(&person.phone_hash)
                    .bind(&person.name_key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (person_id, token) = match known {
                        Some(found) => found,
                        None => {
                            let found = (uuid::Uuid::now_v7().to_string(), new_token());
                            sqlx::query(
                                "insert into person (id, incident_id, phone_hash, phone_last4, name, name_key, token, created_at) \
                                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                            )
                            .bind(&found.0)
                            .bind(&request.incident_id)
                            .bind(&person.phone_hash)
                            .bind(&person.phone_last4)
                            .bind(&person.name)
                            .bind(&person.name_key)
                            .bind(&found.1)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            found
                        }
                    };
                    // The requester's check-in has the request's id; each
                    // member's gets one of its own.
                    let id = if i == 0 {
                        checkin_id.clone()
                    } else {
                        uuid::Uuid::now_v7().to_string()
                    };
                    sqlx::query(
                        "insert into checkin (id, incident_id, person_id, statuses, shelter_id, message, lat, lon, recorded_at) \
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&id)
                    .bind(&request.incident_id)
                    .bind(&person_id)
                    .bind(status_text(&person.statuses))
                    .bind(&request.shelter_id)
                    .bind(if i == 0 { request.message.as_deref() } else { None })
                    .bind(request.location.map(|l| l.lat))
                    .bind(request.location.map(|l| l.lon))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let watchers: Vec<String> = sqlx::query_scalar(
                        "select token from watch where incident_id = $1 and \
                         ((kind = 'phone' and key = $2) or (kind = 'name' and key = $3))",
                    )
                    .bind(&request.incident_id)
                    .bind(&person.phone_hash)
                    .bind(&person.name_key)
                    .fetch_all(&mut *tx)
                    .await?;
                    people.push(StoredPerson {
                        token,
                        report: person.clone(),
                        watchers,
                    });
                }
                let receipt = Receipt {
                    checkin_id,
                    person_token: people[0].token.clone(),
                    recorded_at: now,
                    household: people[1..]
                        .iter()
                        .map(|p| HouseholdReceipt {
                            name: p.report.name.clone(),
                            person_token: p.token.clone(),
                        })
                        .collect(),
                };
                if let Some((key, hash)) = &request.idempotency {
                    sqlx::query(
                        "insert into idempotency (incident_id, key, request_hash, response, created_at) \
                         values ($1, $2, $3, $4, $5)",
                    )
                    .bind(&request.incident_id)
                    .bind(key)
                    .bind(hash)
                    .bind(super::to_json(&receipt))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                outcomes.push(Committed::New { receipt, people });
            }
            tx.commit().await?;
            Ok(outcomes)
        })
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
                    "select statuses, shelter_id, message, recorded_at from checkin \
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
