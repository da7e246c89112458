-- An announcement composed in Japanese and, optionally, English: each page
-- shows the text of its language, Japanese where there is no English.
alter table announcement add column text_en text;
