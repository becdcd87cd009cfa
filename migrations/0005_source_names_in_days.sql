-- dmarcd schema, version 5: the names a source was seen with (header_from,
-- DKIM d= and SPF domains) move from a table of their own into the
-- source's day row.
--
-- source_names held a row per name, per source and per day, keyed by
-- source IP first, so every report's names landed all over the table: it
-- was the largest table and its inserts were most of the time an ingest
-- took (issue #7). Now each source_days row carries `names`, a JSON array
-- of "kind:name" strings (kind header_from, dkim or spf; name lower case),
-- sorted and without repeats: a row's names are those of the reports that
-- gave the source a share of that day, or that named it on their first day.
--
-- The roll-ups are built again by dmarcd right after this file, in the same
-- transaction (AfterMigration in storage/rollups.hpp).

ALTER TABLE source_days ADD COLUMN names TEXT NOT NULL DEFAULT '[]';
DROP TABLE source_names;
