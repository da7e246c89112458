//! PostgreSQL: a batch of check-ins in a fixed number of statements over
//! `UNNEST`ed arrays, its live events in the same transaction.

use super::*;

/// PostgreSQL: a batch in a fixed number of statements whatever its size,
/// each over `UNNEST`ed arrays, so 500 check-ins cost the round trips of one
/// and a single fsync at commit. Batches may run side by side (several
/// writers, several instances): people and keys are inserted with
/// `on conflict do nothing`, which waits for a batch inserting the same one
/// and then leaves theirs.
pub(super) async fn commit_bulk(
    pool: &sqlx::PgPool,
    batch: &[CheckinRequest],
) -> Result<Vec<Committed>, sqlx::Error> {
    use std::collections::hash_map::Entry;
    use std::collections::{BTreeSet, HashMap};
    let now = super::super::now();
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
                super::super::to_json(&receipt),
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
