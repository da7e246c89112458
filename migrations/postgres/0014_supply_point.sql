-- Supply distribution points (給水・食料・物資…): posted by offices and
-- volunteer centres, read by everyone. Hours and stock are JSON lists.
create table supply_point (
    id           text primary key,
    municipality text not null,
    kind         text not null,
    name         text not null,
    lat          double precision not null,
    lon          double precision not null,
    address      text,
    status       text not null,
    hours        text not null default '[]',
    stock        text not null default '[]',
    queue        text not null default 'none',
    wait_minutes integer,
    note         text,
    posted_by    text not null,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    confirmed_at timestamptz not null,
    confirmed_by text not null,
    version      bigint not null default 0
);

create index supply_point_municipality on supply_point (municipality);
