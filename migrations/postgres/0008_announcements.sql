-- What an office tells everyone in its municipality ("water at the city
-- hall from 10:00"): kept, listed newest first, and sent live on area:<code>.
create table announcement (
    id           text primary key,
    municipality text not null,
    -- info, warning or urgent.
    severity     text not null,
    text         text not null,
    posted_at    timestamptz not null,
    posted_by    text not null
);

create index announcement_municipality_idx on announcement (municipality, posted_at);
