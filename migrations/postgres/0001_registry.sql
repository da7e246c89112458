-- The shelter registry, officials and the audit trail.

-- One row per site: the registry part (national open-data layout) plus the
-- live state officials post. Ids come from the source files (national list
-- `ID`, GSI `共通ID`, or ad-hoc ids such as `NEW001` in status snapshots).
create table shelter (
    id               text primary key,
    -- Six-digit JIS X 0402 code (with check digit), e.g. 172022 = Nanao.
    municipality     text not null,
    name             text not null,
    name_kana        text,
    name_en          text,
    address          text,
    -- WGS84; ad-hoc sites may have none.
    lat              double precision,
    lon              double precision,
    elevation_m      double precision,
    phone            text,
    -- Bit set of designated hazards: bit i is the i-th hazard column of the
    -- national list (flood, landslide, storm_surge, earthquake, tsunami, fire,
    -- inland_flood, volcano).
    hazards          bigint not null default 0,
    kind             text not null,
    capacity_indoor  bigint,
    capacity_outdoor bigint,
    capacity_text    text,
    served_area      text,
    status           text not null default 'closed',
    occupancy        bigint not null default 0,
    -- JSON array of strings.
    needs            text not null default '[]',
    updated_at       timestamptz,
    updated_by       text,
    as_of            timestamptz,
    created_at       timestamptz not null default now(),
    constraint shelter_status_known check (status in ('closed', 'open', 'full', 'unsafe')),
    constraint shelter_kind_known check (kind in ('emergency_evacuation_site', 'evacuation_shelter', 'welfare_shelter', 'non_designated')),
    constraint shelter_occupancy_non_negative check (occupancy >= 0),
    constraint shelter_location_whole check ((lat is null) = (lon is null))
);

create index shelter_municipality_idx on shelter (municipality);

-- An emergency office's bearer token. Only a keyed hash of the token is kept.
create table official (
    id             bigserial primary key,
    name           text not null,
    -- HMAC-SHA256 of the token under the server secret, hex.
    token_hash     text not null unique,
    -- Comma-separated six-digit codes the token may act on.
    municipalities text not null,
    created_at     timestamptz not null default now(),
    revoked_at     timestamptz
);

-- Every change made by an official (or an operator's import), with the state
-- before and after as JSON.
create table audit_event (
    id       bigserial primary key,
    at       timestamptz not null,
    actor    text not null,
    action   text not null,
    target   text not null,
    before   text,
    after    text
);

create index audit_event_target_idx on audit_event (target, id);

-- The key for keyed hashes (tokens now, phone numbers later), made once at the
-- first start unless ANPI_SECRET is given.
create table server_secret (
    id  integer primary key,
    key bytea not null,
    constraint server_secret_single_row check (id = 1)
);
