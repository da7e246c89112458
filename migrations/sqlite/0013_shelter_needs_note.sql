-- A shelter's needs are codes from one fixed list (the pages translate
-- them); what the list cannot say is the office's note.
alter table shelter add column needs_note text;
