-- Announcements may come as CAP 1.2 alerts (a prefecture's, a weather
-- service's), relayed by an office: the alert's own issuer, place, event,
-- identifier and expiry are kept with the document as received, and an
-- update or cancellation of it retires the announcement (never deletes it).
alter table announcement add column event text;
alter table announcement add column area_desc text;
alter table announcement add column issuer text;
alter table announcement add column expires_at text;
alter table announcement add column cancelled_at text;
alter table announcement add column cap_sender text;
alter table announcement add column cap_identifier text;
alter table announcement add column cap_xml text;

create index announcement_cap_idx on announcement (cap_sender, cap_identifier);
