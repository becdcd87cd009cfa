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
-- The end of this file builds the same tables for the reports already
-- stored. domain_days and reporter_days come from report_days, exactly as
-- the writer would write them. source_days splits each source on its own
-- with the rule of report_days (seconds in each day, largest remainders,
-- the earlier day first on a tie): for a report of one day, the vast
-- majority, that is what the writer does; for a report spanning several
-- days a source's day may differ by a unit from the writer's apportionment.

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

-- The roll-ups of the reports already stored.
--
-- Each source's figures per report, then one row per UTC day the report
-- overlaps (a report with end == begin is all on the day of begin), then
-- the largest-remainder shares: each day gets the floor of figure * seconds
-- / span, and the units left go one each to the days with the largest
-- remainders, the earlier day first on a tie.
CREATE TEMP TABLE rollup_shares AS
WITH RECURSIVE
  sources AS (
    SELECT r.id AS report_id, r.domain, r.reporter_key, r.date_begin AS b, r.date_end AS e,
           x.source_ip,
           SUM(x.count) AS messages,
           SUM(CASE WHEN x.policy_dkim = 'pass' OR x.policy_spf = 'pass' THEN x.count ELSE 0 END)
             AS dmarc_pass,
           SUM(CASE WHEN x.policy_dkim = 'pass' THEN x.count ELSE 0 END) AS dkim_aligned_pass,
           SUM(CASE WHEN x.policy_spf = 'pass' THEN x.count ELSE 0 END) AS spf_aligned_pass,
           SUM(CASE WHEN x.disposition = 'none' THEN x.count ELSE 0 END) AS disposition_none,
           SUM(CASE WHEN x.disposition = 'quarantine' THEN x.count ELSE 0 END)
             AS disposition_quarantine,
           SUM(CASE WHEN x.disposition = 'reject' THEN x.count ELSE 0 END) AS disposition_reject
    FROM reports r JOIN records x ON x.report_id = r.id
    GROUP BY r.id, x.source_ip
  ),
  days (report_id, b, e, day) AS (
    SELECT id, date_begin, date_end, date_begin - date_begin % 86400 FROM reports
    UNION ALL
    SELECT report_id, b, e, day + 86400 FROM days WHERE day + 86400 < e
  ),
  split AS (
    SELECT s.*, d.day,
           CASE WHEN s.e > s.b THEN MIN(s.e, d.day + 86400) - MAX(s.b, d.day) ELSE 1 END AS secs,
           MAX(s.e - s.b, 1) AS span
    FROM sources s JOIN days d ON d.report_id = s.report_id
  ),
  exact AS (
    SELECT report_id, domain, reporter_key, b, e, source_ip, day,
      messages, dmarc_pass, dkim_aligned_pass, spf_aligned_pass, disposition_none,
      disposition_quarantine, disposition_reject,
      messages * secs / span AS q_messages, messages * secs % span AS r_messages,
      dmarc_pass * secs / span AS q_dmarc_pass, dmarc_pass * secs % span AS r_dmarc_pass,
      dkim_aligned_pass * secs / span AS q_dkim_aligned_pass,
      dkim_aligned_pass * secs % span AS r_dkim_aligned_pass,
      spf_aligned_pass * secs / span AS q_spf_aligned_pass,
      spf_aligned_pass * secs % span AS r_spf_aligned_pass,
      disposition_none * secs / span AS q_disposition_none,
      disposition_none * secs % span AS r_disposition_none,
      disposition_quarantine * secs / span AS q_disposition_quarantine,
      disposition_quarantine * secs % span AS r_disposition_quarantine,
      disposition_reject * secs / span AS q_disposition_reject,
      disposition_reject * secs % span AS r_disposition_reject
    FROM split
  )
SELECT report_id, domain, reporter_key, b, e, source_ip, day,
  q_messages + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip ORDER BY r_messages DESC, day)
    <= messages - SUM(q_messages) OVER (PARTITION BY report_id, source_ip)) AS messages,
  q_dmarc_pass + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                     ORDER BY r_dmarc_pass DESC, day)
    <= dmarc_pass - SUM(q_dmarc_pass) OVER (PARTITION BY report_id, source_ip)) AS dmarc_pass,
  q_dkim_aligned_pass + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                            ORDER BY r_dkim_aligned_pass DESC, day)
    <= dkim_aligned_pass - SUM(q_dkim_aligned_pass) OVER (PARTITION BY report_id, source_ip))
    AS dkim_aligned_pass,
  q_spf_aligned_pass + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                           ORDER BY r_spf_aligned_pass DESC, day)
    <= spf_aligned_pass - SUM(q_spf_aligned_pass) OVER (PARTITION BY report_id, source_ip))
    AS spf_aligned_pass,
  q_disposition_none + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                           ORDER BY r_disposition_none DESC, day)
    <= disposition_none - SUM(q_disposition_none) OVER (PARTITION BY report_id, source_ip))
    AS disposition_none,
  q_disposition_quarantine + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                                 ORDER BY r_disposition_quarantine DESC, day)
    <= disposition_quarantine - SUM(q_disposition_quarantine)
                                  OVER (PARTITION BY report_id, source_ip))
    AS disposition_quarantine,
  q_disposition_reject + (ROW_NUMBER() OVER (PARTITION BY report_id, source_ip
                                             ORDER BY r_disposition_reject DESC, day)
    <= disposition_reject - SUM(q_disposition_reject) OVER (PARTITION BY report_id, source_ip))
    AS disposition_reject
FROM exact;

INSERT INTO source_days
SELECT domain, day, source_ip, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned_pass),
       SUM(spf_aligned_pass), SUM(disposition_none), SUM(disposition_quarantine),
       SUM(disposition_reject), MIN(b), MAX(e)
FROM rollup_shares
WHERE day = b - b % 86400 OR messages + dmarc_pass + dkim_aligned_pass + spf_aligned_pass +
      disposition_none + disposition_quarantine + disposition_reject > 0
GROUP BY domain, day, source_ip;

DROP TABLE rollup_shares;

INSERT INTO domain_days
SELECT domain, day, SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned_pass),
       SUM(spf_aligned_pass), SUM(disposition_none), SUM(disposition_quarantine),
       SUM(disposition_reject)
FROM report_days
GROUP BY domain, day;

INSERT INTO reporter_days
SELECT d.domain, d.day, r.reporter_key, SUM(d.messages), SUM(d.dmarc_pass)
FROM report_days d JOIN reports r ON r.id = d.report_id
GROUP BY d.domain, d.day, r.reporter_key;

INSERT INTO source_reports
SELECT r.domain, x.source_ip, r.date_begin, r.id, r.date_end, COUNT(*), SUM(x.count)
FROM reports r JOIN records x ON x.report_id = r.id
GROUP BY r.id, x.source_ip;

-- Names on every day a report covers, as the writer files them.
INSERT OR IGNORE INTO source_names
WITH RECURSIVE
  days (report_id, e, day) AS (
    SELECT id, date_end, date_begin - date_begin % 86400 FROM reports
    UNION ALL
    SELECT report_id, e, day + 86400 FROM days WHERE day + 86400 < e
  ),
  names (report_id, domain, source_ip, kind, name) AS (
    SELECT r.id, r.domain, x.source_ip, 'header_from', lower(x.header_from)
    FROM reports r JOIN records x ON x.report_id = r.id WHERE x.header_from <> ''
    UNION
    SELECT r.id, r.domain, x.source_ip, 'dkim', lower(k.domain)
    FROM reports r JOIN records x ON x.report_id = r.id JOIN dkim_results k ON k.record_id = x.id
    WHERE k.domain <> ''
    UNION
    SELECT r.id, r.domain, x.source_ip, 'spf', lower(k.domain)
    FROM reports r JOIN records x ON x.report_id = r.id JOIN spf_results k ON k.record_id = x.id
    WHERE k.domain <> ''
  )
SELECT n.domain, n.source_ip, d.day, n.kind, n.name
FROM names n JOIN days d ON d.report_id = n.report_id;
