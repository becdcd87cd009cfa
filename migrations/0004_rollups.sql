-- dmarcd schema, version 4: daily roll-ups, so that the dashboard's
-- summary, trend, sources and reporters read a few rows per day instead of
-- every record.
--
-- The writer keeps these tables inside the ingest transaction
-- (storage/rollups.cpp). A domain's and a reporter's days are the sums of
-- report_days. Per report, the records of each source IP are added up, and
-- each source's figures are split over the report's UTC days so that they
-- add up both to the source's totals and to the report's day shares; so
-- the sources of a domain add up to the domain.
--
-- The apportionment is not expressible in SQL, so the roll-ups of the
-- reports already stored are built by dmarcd right after this file, in the
-- same transaction (AfterMigration in storage/rollups.hpp).

-- Per policy domain and UTC day. Only days with some figure are kept.
CREATE TABLE domain_days (
  domain                 TEXT    NOT NULL,
  day                    INTEGER NOT NULL,  -- Unix seconds of 00:00 UTC
  messages               INTEGER NOT NULL,
  dmarc_pass             INTEGER NOT NULL,
  dkim_aligned_pass      INTEGER NOT NULL,
  spf_aligned_pass       INTEGER NOT NULL,
  disposition_none       INTEGER NOT NULL,
  disposition_quarantine INTEGER NOT NULL,
  disposition_reject     INTEGER NOT NULL,
  PRIMARY KEY (domain, day)
) WITHOUT ROWID;

-- Per policy domain, UTC day and source IP. A source is kept on the first
-- day of every report that names it, even with no messages, and on every
-- other day where it has some figure. first_seen and last_seen are the
-- earliest begin and the latest end of the reports behind the row.
CREATE TABLE source_days (
  domain                 TEXT    NOT NULL,
  day                    INTEGER NOT NULL,
  source_ip              TEXT    NOT NULL,
  messages               INTEGER NOT NULL,
  dmarc_pass             INTEGER NOT NULL,
  dkim_aligned_pass      INTEGER NOT NULL,
  spf_aligned_pass       INTEGER NOT NULL,
  disposition_none       INTEGER NOT NULL,
  disposition_quarantine INTEGER NOT NULL,
  disposition_reject     INTEGER NOT NULL,
  first_seen             INTEGER NOT NULL,
  last_seen              INTEGER NOT NULL,
  PRIMARY KEY (domain, day, source_ip)
) WITHOUT ROWID;

-- The header_from, DKIM d= and SPF domains seen for a source, on every UTC
-- day of the reports that carried them; lower case.
CREATE TABLE source_names (
  domain    TEXT    NOT NULL,
  source_ip TEXT    NOT NULL,
  day       INTEGER NOT NULL,
  kind      TEXT    NOT NULL CHECK (kind IN ('header_from', 'dkim', 'spf')),
  name      TEXT    NOT NULL,
  PRIMARY KEY (domain, source_ip, day, kind, name)
) WITHOUT ROWID;

-- Which reports name a source: one row per (report, source IP), with how
-- many of the report's records and messages it holds.
CREATE TABLE source_reports (
  domain     TEXT    NOT NULL,
  source_ip  TEXT    NOT NULL,
  date_begin INTEGER NOT NULL,
  report_id  INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  date_end   INTEGER NOT NULL,
  records    INTEGER NOT NULL,
  messages   INTEGER NOT NULL,
  PRIMARY KEY (domain, source_ip, date_begin, report_id)
) WITHOUT ROWID;
CREATE INDEX source_reports_by_report ON source_reports (report_id);

-- Per policy domain, UTC day and reporter (reports.reporter_key): the sum
-- of the reporter's reports' shares of that day.
CREATE TABLE reporter_days (
  domain       TEXT    NOT NULL,
  day          INTEGER NOT NULL,
  reporter_key TEXT    NOT NULL,
  messages     INTEGER NOT NULL,
  dmarc_pass   INTEGER NOT NULL,
  PRIMARY KEY (domain, day, reporter_key)
) WITHOUT ROWID;
