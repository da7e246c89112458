-- The transactional outbox: every change writes the live events it causes
-- here, in the same transaction as the data, so a crash can delay an event
-- but never lose it. A relay on each instance publishes the rows in id order
-- through the broker and deletes them in the transaction that took them.
create table outbox (
    id         bigserial not null,
    -- Channels are spread over a few shards; one relay at a time holds a
    -- shard (an advisory lock), so each channel's events leave in order
    -- while several instances share the work.
    shard      smallint not null,
    -- A change's events of this shard, in order, one per line:
    -- channel TAB kind TAB data (JSON text as it goes on the wire, which has
    -- no raw tab or newline). One row per shard and change, not per event:
    -- a check-in batch of 512 writes at most one row per shard, not 512.
    events     text not null,
    -- How many lines `events` holds.
    n          integer not null,
    created_at timestamptz not null default now(),
    -- One index serves both the relay's read (a shard, oldest first) and its
    -- delete: a second index on id alone would cost every row an insert.
    primary key (shard, id)
);

-- Wake the relays when a transaction that wrote events commits (a NOTIFY
-- is delivered at commit, once per transaction and channel).
create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('anpi_outbox', '');
    return null;
end;
$$;

create trigger outbox_notify after insert on outbox
    for each statement execute function outbox_notify();
