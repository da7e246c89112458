-- When an incident's personal data was deleted, and the counts kept then.
alter table incident add column purged_at text;
alter table incident add column final_stats text;
