//! Check-ins, written a batch per transaction: the surge write path's
//! database side (`crate::checkin` gathers the batches).

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
            Store::Postgres(pool) => commit_bulk(pool, batch).await,
            Store::Sqlite(_) => self.commit_row_by_row(batch).await,
        }
    }

    /// One statement per row, all in one transaction: SQLite runs in process,
    /// so a statement costs no round trip.
    async fn commit_row_by_row(
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
                let closed: Option<Option<DateTime<Utc>>> =
                    sqlx::query_scalar("select closed_at from incident where id = $1")
                        .bind(&request.incident_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                match closed {
                    None => {
                        outcomes.push(Committed::NoIncident);
                        continue;
                    }
                    Some(Some(at)) => {
                        outcomes.push(Committed::Closed(at));
                        continue;
                    }
                    Some(None) => {}
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
                        "insert into checkin (id, incident_id, person_id, statuses, shelter_id, message, lat, lon, recorded_at, author_name) \
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                    // A member was reported by the one checking in.
                    .bind((i > 0).then_some(&request.people[0].name))
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
                outbox!(&mut *tx, &checkin_events(request, &receipt, &people))?;
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

/// PostgreSQL: a batch in a fixed number of statements whatever its size,
/// each over `UNNEST`ed arrays, so 500 check-ins cost the round trips of one
/// and a single fsync at commit. Batches may run side by side (several
/// writers, several instances): people and keys are inserted with
/// `on conflict do nothing`, which waits for a batch inserting the same one
/// and then leaves theirs.
async fn commit_bulk(
    pool: &sqlx::PgPool,
    batch: &[CheckinRequest],
) -> Result<Vec<Committed>, sqlx::Error> {
    use std::collections::hash_map::Entry;
    use std::collections::{BTreeSet, HashMap};
    let now = super::now();
    let mut tx = pool.begin().await?;
    // A share lock on each incident: batches go side by side, and a close
    // (which updates the row) waits for them, so nothing is stored after it.
    let incidents: Vec<&str> = batch
        .iter()
        .map(|r| r.incident_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let open: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select id, closed_at from incident where id = any($1) order by id for share",
    )
    .bind(&incidents)
    .fetch_all(&mut *tx)
    .await?;
    let open: HashMap<String, Option<DateTime<Utc>>> = open.into_iter().collect();

    // Each request is refused, a copy of an earlier one of this batch (same
    // key: a retry that caught up with its first try), or to be stored.
    let mut outcomes: Vec<Option<Committed>> = vec![None; batch.len()];
    let mut first_use: HashMap<(&str, &str), (&str, usize)> = HashMap::new();
    let mut copies = Vec::new();
    let mut to_store = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        match open.get(&request.incident_id) {
            None => outcomes[i] = Some(Committed::NoIncident),
            Some(Some(at)) => outcomes[i] = Some(Committed::Closed(*at)),
            Some(None) => match &request.idempotency {
                Some((key, hash)) => match first_use.entry((&request.incident_id, key)) {
                    Entry::Occupied(first) => {
                        let (first_hash, first) = *first.get();
                        copies.push((i, first, first_hash == hash));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert((hash, i));
                        to_store.push(i);
                    }
                },
                None => to_store.push(i),
            },
        }
    }

    // The people: made if new, then read back (made here or elsewhere).
    type Identity = (String, String, String); // incident, phone hash, name key
    let identity = |request: &CheckinRequest, p: &PersonReport| -> Identity {
        (
            request.incident_id.clone(),
            p.phone_hash.clone(),
            p.name_key.clone(),
        )
    };
    let mut made: [Vec<String>; 7] = Default::default();
    let mut wanted = BTreeSet::new();
    for &i in &to_store {
        let request = &batch[i];
        for person in &request.people {
            if !wanted.insert(identity(request, person)) {
                continue;
            }
            for (column, value) in made.iter_mut().zip([
                uuid::Uuid::now_v7().to_string(),
                request.incident_id.clone(),
                person.phone_hash.clone(),
                person.phone_last4.clone(),
                person.name.clone(),
                person.name_key.clone(),
                new_token(),
            ]) {
                column.push(value);
            }
        }
    }
    let [id, incident, phone, last4, name, name_key, token] = &made;
    let made_now: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "insert into person (id, incident_id, phone_hash, phone_last4, name, name_key, token, created_at) \
         select n.*, $8 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) as n \
         on conflict (incident_id, phone_hash, name_key) do nothing \
         returning incident_id, phone_hash, name_key, id, token",
    )
    .bind(id)
    .bind(incident)
    .bind(phone)
    .bind(last4)
    .bind(name)
    .bind(name_key)
    .bind(token)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut people: HashMap<Identity, (String, String)> = made_now
        .into_iter()
        .map(|(incident, phone, name, id, token)| ((incident, phone, name), (id, token)))
        .collect();
    // Those known before (or just made by a concurrent batch): read back.
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for key @ (incident, phone, name) in &wanted {
        if !people.contains_key(key) {
            a.push(incident.as_str());
            b.push(phone.as_str());
            c.push(name.as_str());
        }
    }
    if !a.is_empty() {
        let found: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "select p.incident_id, p.phone_hash, p.name_key, p.id, p.token from person p \
             join unnest($1::text[], $2::text[], $3::text[]) as k(incident_id, phone_hash, name_key) \
             using (incident_id, phone_hash, name_key)",
        )
        .bind(&a)
        .bind(&b)
        .bind(&c)
        .fetch_all(&mut *tx)
        .await?;
        people.extend(
            found
                .into_iter()
                .map(|(incident, phone, name, id, token)| ((incident, phone, name), (id, token))),
        );
    }

    // Their receipts, then the keys claimed with them. A key used before
    // (committed by now: the insert waited for it) is answered from there.
    let mut receipts: HashMap<usize, Receipt> = HashMap::new();
    let mut answers: [Vec<String>; 4] = Default::default();
    for &i in &to_store {
        let request = &batch[i];
        let tokens: Vec<&String> = request
            .people
            .iter()
            .map(|p| &people[&identity(request, p)].1)
            .collect();
        let receipt = Receipt {
            checkin_id: uuid::Uuid::now_v7().to_string(),
            person_token: tokens[0].clone(),
            recorded_at: now,
            household: request.people[1..]
                .iter()
                .zip(&tokens[1..])
                .map(|(p, token)| HouseholdReceipt {
                    name: p.name.clone(),
                    person_token: (*token).clone(),
                })
                .collect(),
        };
        if let Some((key, hash)) = &request.idempotency {
            for (column, value) in answers.iter_mut().zip([
                request.incident_id.clone(),
                key.clone(),
                hash.clone(),
                super::to_json(&receipt),
            ]) {
                column.push(value);
            }
        }
        receipts.insert(i, receipt);
    }
    let [incident, key, hash, response] = &answers;
    let claimed: Vec<(String, String)> = sqlx::query_as(
        "insert into idempotency (incident_id, key, request_hash, response, created_at) \
         select k.*, $5 from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as k \
         on conflict (incident_id, key) do nothing returning incident_id, key",
    )
    .bind(incident)
    .bind(key)
    .bind(hash)
    .bind(response)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let claimed: BTreeSet<(String, String)> = claimed.into_iter().collect();
    let (mut key_incidents, mut used_keys) = (Vec::new(), Vec::new());
    for &i in &to_store {
        if let Some((key, _)) = &batch[i].idempotency
            && !claimed.contains(&(batch[i].incident_id.clone(), key.clone()))
        {
            key_incidents.push(batch[i].incident_id.as_str());
            used_keys.push(key.as_str());
        }
    }
    if !used_keys.is_empty() {
        let earlier: Vec<(String, String, String, String)> = sqlx::query_as(
            "select i.incident_id, i.key, i.request_hash, i.response from idempotency i \
             join unnest($1::text[], $2::text[]) as k(incident_id, key) using (incident_id, key)",
        )
        .bind(&key_incidents)
        .bind(&used_keys)
        .fetch_all(&mut *tx)
        .await?;
        let earlier: HashMap<(String, String), (String, String)> = earlier
            .into_iter()
            .map(|(incident, key, hash, response)| ((incident, key), (hash, response)))
            .collect();
        to_store.retain(|&i| {
            let request = &batch[i];
            let Some((key, hash)) = &request.idempotency else {
                return true;
            };
            let Some((first_hash, response)) =
                earlier.get(&(request.incident_id.clone(), key.clone()))
            else {
                return true;
            };
            outcomes[i] = Some(match serde_json::from_str(response) {
                Ok(receipt) if first_hash == hash => Committed::Replayed(receipt),
                _ => Committed::KeyReused,
            });
            receipts.remove(&i);
            false
        });
    }

    // The check-ins.
    let mut rows = CheckinColumns::default();
    for &i in &to_store {
        let request = &batch[i];
        for (n, person) in request.people.iter().enumerate() {
            rows.push(
                if n == 0 {
                    receipts[&i].checkin_id.clone()
                } else {
                    uuid::Uuid::now_v7().to_string()
                },
                request,
                &people[&identity(request, person)].0,
                status_text(&person.statuses),
                n,
            );
        }
    }
    sqlx::query(
        "insert into checkin (id, incident_id, person_id, statuses, shelter_id, message, lat, lon, author_name, recorded_at) \
         select c.*, $10 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                     $7::float8[], $8::float8[], $9::text[]) as c",
    )
    .bind(&rows.id)
    .bind(&rows.incident)
    .bind(&rows.person)
    .bind(&rows.statuses)
    .bind(&rows.shelter)
    .bind(&rows.message)
    .bind(&rows.lat)
    .bind(&rows.lon)
    .bind(&rows.author)
    .bind(now)
    .execute(&mut *tx)
    .await?;

    // The families waiting for them (watches by phone or by name).
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (incident, phone, name) in &wanted {
        for (kind, key) in [("phone", phone), ("name", name)] {
            a.push(incident.as_str());
            b.push(kind);
            c.push(key.as_str());
        }
    }
    let watches: Vec<(String, String, String, String)> = sqlx::query_as(
        "select w.incident_id, w.kind, w.key, w.token from watch w \
         join unnest($1::text[], $2::text[], $3::text[]) as k(incident_id, kind, key) using (incident_id, kind, key)",
    )
    .bind(&a)
    .bind(&b)
    .bind(&c)
    .fetch_all(&mut *tx)
    .await?;

    let watches: HashMap<(String, String, String), String> = watches
        .into_iter()
        .map(|(incident, kind, key, token)| ((incident, kind, key), token))
        .collect();
    let mut events = Vec::new();
    for i in to_store {
        let request = &batch[i];
        let watcher = |kind: &str, key: &str| {
            watches
                .get(&(request.incident_id.clone(), kind.to_owned(), key.to_owned()))
                .cloned()
        };
        let stored: Vec<StoredPerson> = request
            .people
            .iter()
            .map(|p| StoredPerson {
                token: people[&identity(request, p)].1.clone(),
                report: p.clone(),
                watchers: watcher("phone", &p.phone_hash)
                    .into_iter()
                    .chain(watcher("name", &p.name_key))
                    .collect(),
            })
            .collect();
        events.extend(checkin_events(request, &receipts[&i], &stored));
        outcomes[i] = Some(Committed::New {
            receipt: receipts[&i].clone(),
            people: stored,
        });
    }
    // The events, in the batch's transaction: committed together or not at all.
    outbox!(&mut *tx, &events)?;
    tx.commit().await?;
    // A copy is answered as its first try was.
    for (i, first, same) in copies {
        outcomes[i] = Some(match (&outcomes[first], same) {
            (Some(Committed::New { receipt, .. } | Committed::Replayed(receipt)), true) => {
                Committed::Replayed(receipt.clone())
            }
            _ => Committed::KeyReused,
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every request answered"))
        .collect())
}

/// The columns of a bulk check-in insert.
#[derive(Default)]
struct CheckinColumns {
    id: Vec<String>,
    incident: Vec<String>,
    person: Vec<String>,
    statuses: Vec<String>,
    shelter: Vec<Option<String>>,
    message: Vec<Option<String>>,
    lat: Vec<Option<f64>>,
    lon: Vec<Option<f64>>,
    author: Vec<Option<String>>,
}

impl CheckinColumns {
    fn push(
        &mut self,
        id: String,
        request: &CheckinRequest,
        person_id: &str,
        statuses: String,
        member: usize,
    ) {
        // The message is the requester's own; members were reported by them.
        let (message, author) = match member {
            0 => (request.message.clone(), None),
            _ => (None, Some(request.people[0].name.clone())),
        };
        self.id.push(id);
        self.incident.push(request.incident_id.clone());
        self.person.push(person_id.to_owned());
        self.statuses.push(statuses);
        self.shelter.push(request.shelter_id.clone());
        self.message.push(message);
        self.author.push(author);
        self.lat.push(request.location.map(|l| l.lat));
        self.lon.push(request.location.map(|l| l.lon));
    }
}
