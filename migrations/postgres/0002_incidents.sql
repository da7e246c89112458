-- Incidents. Check-ins will belong to an incident; its personal data is
-- purged after `purge_at`.
create table incident (
    id             text primary key,
    name           text not null,
    hazard         text not null,
    -- Comma-separated six-digit codes of the municipalities it covers.
    municipalities text not null,
    started_at     timestamptz not null,
    created_by     text not null,
    created_at     timestamptz not null,
    closed_at      timestamptz,
    -- When its personal data goes (closed_at + the retention period).
    purge_at       timestamptz,
    constraint incident_closed_whole check ((closed_at is null) = (purge_at is null))
);

create index incident_open_idx on incident (closed_at, started_at);
