-- Aid: requests residents and offices post, offers volunteers make, the
-- claims that join them, and reports against spam. Tokens gain roles.

-- official (as before), coordinator (a volunteer centre or NPO) or volunteer
-- (registered by a coordinator, whose id it keeps and whose municipalities
-- it shares). A suspended token answers 403; a coordinator's suspension
-- suspends its volunteers.
alter table official add column role text not null default 'official';
alter table official add column org text;
alter table official add column coordinator_id bigint references official (id);
alter table official add column suspended_at text;

create table aid_request (
    id            text primary key,
    municipality  text not null,
    -- One of the documented categories (docs/aid.md).
    category      text not null,
    -- JSON list of {name, quantity, unit}; `quantity` is their sum.
    items         text not null,
    quantity      integer not null check (quantity > 0),
    -- Units taken by live and delivered claims: never above quantity.
    claimed       integer not null default 0 check (claimed >= 0 and claimed <= quantity),
    urgency       text not null,
    -- The exact point, shown only to a claimant, the requester and the
    -- municipality's office and coordinators.
    lat           real not null,
    lon           real not null,
    shelter_id    text,
    note          text,
    -- The contact, sealed (AES-256-GCM under a key derived from the server
    -- secret): nonce followed by ciphertext. Never in a plain column.
    contact       blob,
    -- Keyed hash of the requester's edit token.
    edit_hash     text not null,
    posted_by     text not null,
    status        text not null,
    hidden        integer not null default 0,
    created_at    text not null,
    updated_at    text not null,
    confirmed_at  text not null,
    confirmed_by  text not null,
    -- Raised by every change, in commit order (the row is locked): what
    -- keeps each instance's index from taking an older state for a newer.
    version       bigint not null default 0,
    -- When the requester was last asked to reconfirm (once per staleness).
    reminded_at   text
);
create index aid_request_area_idx on aid_request (municipality, status);

create table aid_offer (
    id              text primary key,
    municipality    text not null,
    category        text not null,
    items           text not null,
    quantity        integer not null check (quantity > 0),
    lat             real not null,
    lon             real not null,
    reach_m         real not null,
    available_from  text,
    available_until text,
    note            text,
    account_id      bigint not null references official (id),
    posted_by       text not null,
    status          text not null,
    hidden          integer not null default 0,
    created_at      text not null,
    updated_at      text not null,
    confirmed_at    text not null,
    confirmed_by    text not null,
    version         bigint not null default 0,
    reminded_at     text
);

create table aid_claim (
    id            text primary key,
    request_id    text not null references aid_request (id),
    account_id    bigint not null references official (id),
    quantity      integer not null check (quantity > 0),
    -- live, delivered, released, lapsed or received.
    status        text not null,
    created_at    text not null,
    due_at        text not null,
    closed_at     text,
    reason        text
);
create index aid_claim_request_idx on aid_claim (request_id);
create index aid_claim_account_idx on aid_claim (account_id, status);
create index aid_claim_due_idx on aid_claim (status, due_at);

-- One row per reporter and record: K distinct ones hide it.
create table aid_report (
    kind      text not null,
    target    text not null,
    reporter  text not null,
    reason    text not null,
    at        text not null,
    primary key (kind, target, reporter)
);

-- A request posted again with the same Idempotency-Key (a retry on a bad
-- network) answers the first one; the body's keyed hash tells a retry from
-- a different request reusing the key.
create table aid_idempotency (
    key         text primary key,
    body_hash   text not null,
    request_id  text not null references aid_request (id),
    created_at  text not null
);
