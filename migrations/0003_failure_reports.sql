-- dmarcd schema, version 3: failure (forensic) reports (RFC 6591, RFC 9991).
--
-- One row per failure report, i.e. per failing message. What is kept of the
-- returned message follows the [privacy] settings at the time it was
-- stored: sample_kept says which ('full', 'headers' or 'none'), and with
-- redact_local_parts every address's local part was replaced by a keyed
-- hash before anything was written (raw_inputs and rejected included).
-- Lists (Original-Rcpt-To, Auth-Failure, ...) are stored one item a line.
CREATE TABLE failure_reports (
  id                        INTEGER PRIMARY KEY,
  -- SHA-256 (hex) of the feedback-report fields and the returned message's
  -- headers: the same report is recognised whatever channel brought it.
  digest                    TEXT    NOT NULL UNIQUE,
  domain                    TEXT    NOT NULL,  -- Reported-Domain, else From's domain; lower case
  format                    TEXT    NOT NULL CHECK (format IN ('arf', 'non_standard')),
  arrived_at                INTEGER NOT NULL,  -- Arrival-Date, else received_at
  feedback_type             TEXT    NOT NULL,
  user_agent                TEXT,
  version                   TEXT,
  arrival_date              INTEGER,           -- Arrival-Date when it could be read
  arrival_date_text         TEXT,
  reporting_mta             TEXT,
  source_ip                 TEXT,
  source_ip_comment         TEXT,
  incidents                 INTEGER,
  original_envelope_id      TEXT,
  original_mail_from        TEXT,
  original_rcpt_to          TEXT    NOT NULL,
  reported_domain           TEXT    NOT NULL,
  reported_uri              TEXT    NOT NULL,
  authentication_results    TEXT    NOT NULL,
  auth_failure              TEXT    NOT NULL,
  identity_alignment        TEXT    NOT NULL,
  delivery_result           TEXT,
  dkim_domain               TEXT,
  dkim_identity             TEXT,
  dkim_selector             TEXT,
  dkim_canonicalized_header TEXT,
  dkim_canonicalized_body   TEXT,
  spf_dns                   TEXT,
  fields                    TEXT    NOT NULL,  -- every feedback-report field, "Name: value"
  returned_part_type        TEXT,
  mail_from                 TEXT,              -- the returned message's From, To, ...
  mail_to                   TEXT,
  subject                   TEXT,
  mail_date                 TEXT,
  message_id                TEXT,
  headers                   TEXT    NOT NULL,  -- its header block ('' when none is kept)
  body                      BLOB,              -- its body, only with store_samples = "full"
  sample_kept               TEXT    NOT NULL CHECK (sample_kept IN ('full', 'headers', 'none')),
  local_parts_redacted      INTEGER NOT NULL,
  warnings                  TEXT    NOT NULL,
  raw_input_id              INTEGER REFERENCES raw_inputs (id) ON DELETE SET NULL,
  received_at               INTEGER NOT NULL,
  origin                    TEXT    NOT NULL
);
CREATE INDEX failure_reports_by_domain_arrived ON failure_reports (domain, arrived_at);
CREATE INDEX failure_reports_by_arrived ON failure_reports (arrived_at);
CREATE INDEX failure_reports_by_received ON failure_reports (received_at);

-- The per-database key of the local-part hash (HMAC-SHA-256), made once
-- with a random value the first time a local part is redacted.
CREATE TABLE privacy_key (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  key BLOB    NOT NULL
);
