-- The transactional outbox: every change writes the live events it causes
-- here, in the same transaction as the data, so a crash can delay an event
-- but never lose it. The relay publishes the rows in id order through the
-- broker and deletes them in the transaction that took them.
create table outbox (
    id         integer primary key autoincrement,
    -- Kept for the same layout as PostgreSQL (one writer here: no sharing).
    shard      integer not null,
    -- A change's events of this shard, in order, one per line:
    -- channel TAB kind TAB data (JSON text as it goes on the wire).
    events     text not null,
    -- How many lines `events` holds.
    n          integer not null,
    created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

create index outbox_shard_idx on outbox (shard, id);
