-- Safety check-ins of an incident. This is personal data: all of it goes
-- when the incident's purge_at has passed.

-- Someone checked in (or looked for) in one incident: one row per phone and
-- name, so a household sharing a phone is several people.
create table person (
    id           text primary key,
    incident_id  text not null references incident (id),
    -- HMAC-SHA256 of the E.164 number under the server secret; the number
    -- itself is never stored. Null for people known only by name.
    phone_hash   text,
    phone_last4  text,
    name         text not null,
    -- The name folded for exact matching (domain::person::name_key).
    name_key     text not null,
    -- What a family subscribes to (person:<token>) and looks up by.
    token        text not null unique,
    created_at   text not null
);

create unique index person_identity_idx on person (incident_id, phone_hash, name_key);
create index person_name_idx on person (incident_id, name_key);

create table checkin (
    id           text primary key,
    incident_id  text not null references incident (id),
    person_id    text not null references person (id),
    -- Comma-separated statuses, in domain order.
    statuses     text not null,
    shelter_id   text,
    message      text,
    lat          real,
    lon          real,
    recorded_at  text not null
);

create index checkin_person_idx on checkin (person_id, recorded_at);

-- The first answer to each Idempotency-Key, returned again to a retry.
create table idempotency (
    incident_id  text not null,
    key          text not null,
    -- SHA-256 of the request as understood; another body under the key is a 409.
    request_hash text not null,
    response     text not null,
    created_at   text not null,
    primary key (incident_id, key)
);
