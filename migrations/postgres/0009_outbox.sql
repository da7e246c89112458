-- The transactional outbox: every change writes the live events it causes
-- here, in the same transaction as the data, so a crash can delay an event
-- but never lose it. A relay on each instance publishes the rows in id order
-- through the broker and deletes them in the transaction that took them.
create table outbox (
    id         bigserial primary key,
    -- Channels are spread over a few shards; one relay at a time holds a
    -- shard (an advisory lock), so each channel's events leave in order
    -- while several instances share the work.
    shard      smallint not null,
    channel    text not null,
    kind       text not null,
    -- The event's data, JSON text as it goes on the wire.
    data       text not null,
    created_at timestamptz not null default now()
);

create index outbox_shard_idx on outbox (shard, id);

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
