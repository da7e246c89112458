-- People whose latest check-in (in an open incident) is at this shelter:
-- self-reported arrivals, shown next to the office's headcount.
alter table shelter add column self_reported bigint not null default 0;
