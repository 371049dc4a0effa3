-- The tablet's database. Never edit a migration once it has landed: add a new file instead.
-- Instants are INTEGER milliseconds since the Unix epoch, UTC, as on the server. UUIDs are
-- 16-byte BLOBs. Singleton tables hold at most one row (id = 1).

-- This tablet's device credential, from an approved enrolment.
CREATE TABLE credentials (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    tablet_id     INTEGER NOT NULL,
    tablet_name   TEXT NOT NULL,
    device_token  TEXT NOT NULL
);

-- An enrolment the tablet started and is polling; its code is on screen.
CREATE TABLE pending_enrolment (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    enrolment_id  BLOB NOT NULL,
    code          TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);

-- The last pairing, as the server sent it (JSON of shared_model::Pairing). The tablet keeps
-- rating under it offline until told it ended.
CREATE TABLE pairing (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    pairing  TEXT NOT NULL
);

-- The visit in progress, so that a crash cannot lose a started visit.
CREATE TABLE active_visit (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    visit_id    BLOB NOT NULL,
    pairing_id  BLOB NOT NULL,
    service_id  INTEGER NOT NULL,
    started_at  INTEGER NOT NULL
);

-- Finished visits the server has not acknowledged, oldest first by seq. The row is both the
-- rating and its outbox entry, so they cannot be written apart. Deleted once the server
-- answers stored or already_stored.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY,
    visit_id       BLOB NOT NULL UNIQUE,
    pairing_id     BLOB NOT NULL,
    service_id     INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER NOT NULL,
    rating         INTEGER CHECK (rating IN (1, 2, 3)),
    has_recording  INTEGER NOT NULL CHECK (has_recording IN (0, 1))
);

-- Visits the server refused for good: kept, counted on the staff panel, never resent.
CREATE TABLE rejected_visits (
    visit_id       BLOB PRIMARY KEY,
    pairing_id     BLOB NOT NULL,
    service_id     INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER NOT NULL,
    rating         INTEGER,
    has_recording  INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    message        TEXT NOT NULL,
    rejected_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Плохо visits whose recording the server does not hold yet. Outlives the outbox row, so that
-- crash recovery of an audio spool can still ask whether the visit wants its recording.
CREATE TABLE awaiting_recording (
    visit_id  BLOB PRIMARY KEY
) WITHOUT ROWID;

-- Encoded recordings waiting for upload. The file is deleted once the server confirms it.
CREATE TABLE recordings (
    visit_id    BLOB PRIMARY KEY,
    path        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    queued_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Recordings given up (refused by the server, or the file was lost): counted on the staff panel.
CREATE TABLE dropped_recordings (
    visit_id    BLOB PRIMARY KEY,
    reason      TEXT NOT NULL,
    dropped_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_sync  INTEGER
);
