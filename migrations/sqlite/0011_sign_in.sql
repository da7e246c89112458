-- Signing in on a device: a one-time code (in a link or QR code an
-- operator prints with `anpi token create --link`) is exchanged once for a
-- token of that device's own, which signing out revokes. Only keyed hashes
-- of codes and tokens are kept.
create table sign_in_code (
    code_hash   text primary key,
    account_id  bigint not null references official (id),
    created_at  text not null,
    expires_at  text not null,
    used_at     text
);

create table device_token (
    token_hash  text primary key,
    account_id  bigint not null references official (id),
    created_at  text not null,
    revoked_at  text
);
create index device_token_account_idx on device_token (account_id);
