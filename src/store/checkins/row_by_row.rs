//! SQLite: a batch of check-ins written statement by statement in one
//! transaction. SQLite runs in process, so a statement costs no round trip,
//! and one transaction is one fsync for the lot.

use super::*;

/// One statement per row, all in one transaction: SQLite runs in process,
/// so a statement costs no round trip.
pub(super) async fn commit_row_by_row(
    pool: &sqlx::SqlitePool,
    batch: &[CheckinRequest],
) -> Result<Vec<Committed>, sqlx::Error> {
    let now = super::super::now();
    {
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
                    .bind(super::super::to_json(&receipt))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            outbox!(&mut *tx, &checkin_events(request, &receipt, &people))?;
            outcomes.push(Committed::New { receipt, people });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}
