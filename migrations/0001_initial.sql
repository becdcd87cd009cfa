-- dmarcd schema, version 1.
--
-- Times are Unix seconds, UTC. Counts are 64-bit integers; a message count
-- above 2^63 is stored with the same bits and read back unsigned.
-- Enumerations are stored as the lower-case words of RFC 7489 Appendix C and
-- RFC 9990; NULL means the element was absent or empty.

-- Every envelope exactly as it was received, kept once per SHA-256 so that a
-- report can always be parsed again from the original bytes. Payloads that
-- arrived compressed (gzip, zip) are kept as they are; anything else is
-- gzip-compressed (compression = 'gzip').
CREATE TABLE raw_inputs (
  id          INTEGER PRIMARY KEY,
  sha256      TEXT    NOT NULL UNIQUE,  -- hex, of the bytes as received
  size        INTEGER NOT NULL,         -- bytes as received
  compression TEXT    NOT NULL CHECK (compression IN ('none', 'gzip')),
  bytes       BLOB    NOT NULL,
  origin      TEXT    NOT NULL,
  received_at INTEGER NOT NULL
);

-- One aggregate report. The UNIQUE key is what makes a report a duplicate:
-- some reporters reuse a report id for the next day, so the date range and
-- the policy domain are part of it.
CREATE TABLE reports (
  id                      INTEGER PRIMARY KEY,
  reporter_key            TEXT    NOT NULL,
  org_name                TEXT    NOT NULL,
  org_email               TEXT,
  extra_contact_info      TEXT,
  report_id               TEXT    NOT NULL,
  domain                  TEXT    NOT NULL,  -- policy_published/domain, lower case
  date_begin              INTEGER NOT NULL,  -- date_range/begin
  date_end                INTEGER NOT NULL,  -- date_range/end
  version                 TEXT,
  namespace               TEXT,
  generator               TEXT,
  policy_adkim            TEXT,
  policy_aspf             TEXT,
  policy_p                TEXT,
  policy_sp               TEXT,
  policy_np               TEXT,
  policy_pct              INTEGER,
  policy_fo               TEXT,
  policy_testing          TEXT,
  policy_discovery_method TEXT,
  records                 INTEGER NOT NULL DEFAULT 0,
  messages                INTEGER NOT NULL DEFAULT 0,
  raw_input_id            INTEGER REFERENCES raw_inputs (id),
  document_name           TEXT    NOT NULL,
  received_at             INTEGER NOT NULL,
  origin                  TEXT    NOT NULL,
  UNIQUE (reporter_key, report_id, domain, date_begin, date_end)
);
CREATE INDEX reports_by_domain_begin ON reports (domain, date_begin);
CREATE INDEX reports_by_begin ON reports (date_begin);

-- The report's <report_metadata><error> elements (kind 'error') and what the
-- parser recovered from (kind 'warning'), in order.
CREATE TABLE report_notes (
  report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  kind      TEXT    NOT NULL CHECK (kind IN ('error', 'warning')),
  seq       INTEGER NOT NULL,
  text      TEXT    NOT NULL,
  PRIMARY KEY (report_id, kind, seq)
) WITHOUT ROWID;

-- One <record>; seq is its position in the document, from 0.
CREATE TABLE records (
  id            INTEGER PRIMARY KEY,
  report_id     INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  source_ip     TEXT    NOT NULL,
  count         INTEGER NOT NULL,
  disposition   TEXT,
  policy_dkim   TEXT,
  policy_spf    TEXT,
  header_from   TEXT,
  envelope_from TEXT,
  envelope_to   TEXT
);
CREATE INDEX records_by_report ON records (report_id, seq);

-- policy_evaluated/reason, in order.
CREATE TABLE record_reasons (
  record_id INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  type      TEXT,
  comment   TEXT,
  PRIMARY KEY (record_id, seq)
) WITHOUT ROWID;

-- auth_results/dkim, in order.
CREATE TABLE dkim_results (
  record_id    INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  domain       TEXT,
  selector     TEXT,
  result       TEXT    NOT NULL,
  human_result TEXT,
  PRIMARY KEY (record_id, seq)
) WITHOUT ROWID;

-- auth_results/spf, in order.
CREATE TABLE spf_results (
  record_id    INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  domain       TEXT,
  scope        TEXT,
  result       TEXT    NOT NULL,
  human_result TEXT,
  PRIMARY KEY (record_id, seq)
) WITHOUT ROWID;

-- A report's figures split over the UTC days its date range covers, in
-- proportion to the seconds in each day (largest remainders, so every
-- figure's shares add up to the report's). Summaries and daily series both
-- read this table, so a summary is always the sum of its series.
CREATE TABLE report_days (
  report_id              INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  day                    INTEGER NOT NULL,  -- Unix seconds of 00:00 UTC
  domain                 TEXT    NOT NULL,  -- copy of reports.domain
  messages               INTEGER NOT NULL,
  dmarc_pass             INTEGER NOT NULL,
  dkim_aligned_pass      INTEGER NOT NULL,
  spf_aligned_pass       INTEGER NOT NULL,
  disposition_none       INTEGER NOT NULL,
  disposition_quarantine INTEGER NOT NULL,
  disposition_reject     INTEGER NOT NULL,
  PRIMARY KEY (report_id, day)
) WITHOUT ROWID;
CREATE INDEX report_days_by_domain_day ON report_days (domain, day);
CREATE INDEX report_days_by_day ON report_days (day);

-- Input that held no report dmarcd could store, kept whole with the reason,
-- once per SHA-256 of the part.
CREATE TABLE rejected (
  id           INTEGER PRIMARY KEY,
  received_at  INTEGER NOT NULL,
  origin       TEXT    NOT NULL,
  name         TEXT    NOT NULL,  -- the part inside the envelope
  code         TEXT    NOT NULL,  -- ErrorCodeName
  message      TEXT    NOT NULL,
  size         INTEGER NOT NULL,
  sha256       TEXT    NOT NULL UNIQUE,
  bytes        BLOB    NOT NULL,
  raw_input_id INTEGER REFERENCES raw_inputs (id),
  recovered_at INTEGER           -- set when a later parser stored a report from it
);
CREATE INDEX rejected_by_received_at ON rejected (received_at);

-- The reports a rejected row turned into when it was parsed again.
CREATE TABLE rejected_recoveries (
  rejected_id INTEGER NOT NULL REFERENCES rejected (id) ON DELETE CASCADE,
  report_id   INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  PRIMARY KEY (rejected_id, report_id)
) WITHOUT ROWID;

-- API bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL,
  scope         TEXT    NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
  secret_sha256 TEXT    NOT NULL UNIQUE,
  created_at    INTEGER NOT NULL,
  revoked_at    INTEGER,
  last_used_at  INTEGER
);
-- A name may be reused once the token that had it is revoked.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
