-- People and notes exchanged as PFIF 1.4 (Google Person Finder's format).
-- An imported record keeps its PFIF id, so importing the same file again
-- adds nothing; a note's PFIF status and author are kept as given.
alter table person add column pfif_record_id text;
create unique index person_pfif_idx on person (incident_id, pfif_record_id);

alter table checkin add column note_record_id text;
alter table checkin add column pfif_status text;
alter table checkin add column author_name text;
create unique index checkin_note_idx on checkin (incident_id, note_record_id);
