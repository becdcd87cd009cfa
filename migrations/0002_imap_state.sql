-- dmarcd schema, version 2: what the IMAP poller remembers of each mailbox.
--
-- UIDs are only meaningful together with the mailbox's UIDVALIDITY
-- (RFC 3501 section 2.3.1.1): when the server reports another UIDVALIDITY,
-- the poller starts again from the first message (what it stores again is
-- recognised as duplicates).
CREATE TABLE imap_state (
  account     TEXT    NOT NULL,  -- [[imap]] name
  mailbox     TEXT    NOT NULL,
  uidvalidity INTEGER NOT NULL,
  -- Every message up to this UID has an outcome; with after = "keep" they
  -- are not fetched again.
  last_uid    INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (account, mailbox)
) WITHOUT ROWID;
