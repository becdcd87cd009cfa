-- dmarcd schema, version 6: the bytes of raw_inputs and rejected move to
-- the last column of their rows. Nothing else changes.
--
-- A large input is archived by inserting a zero-filled blob of its size and
-- writing into it through incremental blob I/O (EnvelopeStore::ArchiveSource).
-- SQLite writes such a blob without building it in memory only when no
-- column after it holds data; with `bytes` in the middle of the row, the
-- archive of a 65 MB input took 130 MB of memory (issue #7).
--
-- ALTER TABLE cannot move a column, so each table is made anew, filled,
-- and put in the old one's place. Database::Migrate runs migrations with
-- foreign key enforcement off, so that dropping the old table leaves the
-- rows that point at it alone, and checks every key before the commit.

CREATE TABLE raw_inputs_v6 (
  id          INTEGER PRIMARY KEY,
  sha256      TEXT    NOT NULL UNIQUE,  -- hex, of the bytes as received
  size        INTEGER NOT NULL,         -- bytes as received
  compression TEXT    NOT NULL CHECK (compression IN ('none', 'gzip')),
  origin      TEXT    NOT NULL,
  received_at INTEGER NOT NULL,
  bytes       BLOB    NOT NULL
);
INSERT INTO raw_inputs_v6 (id, sha256, size, compression, origin, received_at, bytes)
  SELECT id, sha256, size, compression, origin, received_at, bytes FROM raw_inputs;
DROP TABLE raw_inputs;
ALTER TABLE raw_inputs_v6 RENAME TO raw_inputs;

CREATE TABLE rejected_v6 (
  id           INTEGER PRIMARY KEY,
  received_at  INTEGER NOT NULL,
  origin       TEXT    NOT NULL,
  name         TEXT    NOT NULL,  -- the part inside the envelope
  code         TEXT    NOT NULL,  -- ErrorCodeName
  message      TEXT    NOT NULL,
  size         INTEGER NOT NULL,
  sha256       TEXT    NOT NULL UNIQUE,
  raw_input_id INTEGER REFERENCES raw_inputs (id),
  recovered_at INTEGER,           -- set when a later parser stored a report from it
  bytes        BLOB    NOT NULL
);
INSERT INTO rejected_v6 (id, received_at, origin, name, code, message, size, sha256,
                         raw_input_id, recovered_at, bytes)
  SELECT id, received_at, origin, name, code, message, size, sha256, raw_input_id,
         recovered_at, bytes FROM rejected;
DROP TABLE rejected;
ALTER TABLE rejected_v6 RENAME TO rejected;
CREATE INDEX rejected_by_received_at ON rejected (received_at);
