-- A family waiting for someone not (yet) found: a look-up by phone or by
-- name leaves a watch whose token is told about every later check-in that
-- matches. Personal data, purged with the incident's check-ins.
create table watch (
    incident_id  text not null references incident (id),
    -- 'phone' (key: the phone's keyed hash) or 'name' (key: the name key).
    kind         text not null,
    key          text not null,
    token        text not null unique,
    created_at   text not null,
    primary key (incident_id, kind, key),
    constraint watch_kind_known check (kind in ('phone', 'name'))
);
