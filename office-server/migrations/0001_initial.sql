-- Initial schema. Never edit a migration once it has landed: add a new file instead.
-- Instants are INTEGER milliseconds since the Unix epoch, UTC. UUIDs are 16-byte BLOBs.

CREATE TABLE departments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
);

CREATE TABLE sections (
    id            INTEGER PRIMARY KEY,
    department_id INTEGER NOT NULL REFERENCES departments(id),
    name          TEXT NOT NULL,
    UNIQUE (department_id, name)
);

CREATE TABLE employees (
    id          INTEGER PRIMARY KEY,
    section_id  INTEGER NOT NULL REFERENCES sections(id),
    full_name   TEXT NOT NULL,
    position    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE services (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

CREATE TABLE section_services (
    section_id  INTEGER NOT NULL REFERENCES sections(id),
    service_id  INTEGER NOT NULL REFERENCES services(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (section_id, service_id)
) WITHOUT ROWID;

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    login          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'observer', 'head', 'specialist')),
    department_id  INTEGER REFERENCES departments(id),
    section_id     INTEGER REFERENCES sections(id),
    employee_id    INTEGER REFERENCES employees(id),
    created_at     INTEGER NOT NULL,
    CHECK (role <> 'head' OR (department_id IS NULL) <> (section_id IS NULL)),
    CHECK (role <> 'specialist' OR employee_id IS NOT NULL)
);

CREATE TABLE sessions (
    token_hash  BLOB PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tablets (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    device_description  TEXT NOT NULL,
    token_hash          BLOB UNIQUE,
    enrolled_at         INTEGER NOT NULL,
    confirmed_at        INTEGER,
    revoked_at          INTEGER,
    last_seen_at        INTEGER,
    app_version         TEXT,
    queue_length        INTEGER,
    recordings_pending  INTEGER,
    free_storage_bytes  INTEGER,
    microphone          TEXT,
    clock_offset_ms     INTEGER
);

CREATE TABLE enrolments (
    id                  BLOB PRIMARY KEY,
    code                TEXT NOT NULL,
    device_description  TEXT NOT NULL,
    app_version         TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    tablet_id           INTEGER REFERENCES tablets(id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX enrolments_open_code ON enrolments(code) WHERE tablet_id IS NULL;

CREATE TABLE pairings (
    id             BLOB PRIMARY KEY,
    tablet_id      INTEGER NOT NULL REFERENCES tablets(id),
    employee_id    INTEGER NOT NULL REFERENCES employees(id),
    -- Where the employee worked when the pairing began; visits keep these.
    section_id     INTEGER NOT NULL REFERENCES sections(id),
    department_id  INTEGER NOT NULL REFERENCES departments(id),
    started_at     INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    ended_at       INTEGER,
    end_reason     TEXT
) WITHOUT ROWID;
CREATE INDEX pairings_by_tablet ON pairings(tablet_id, started_at);
CREATE INDEX pairings_by_employee ON pairings(employee_id, started_at);

-- The services a pairing offered, fixed when it began, so offline visits stay valid.
CREATE TABLE pairing_services (
    pairing_id  BLOB NOT NULL REFERENCES pairings(id),
    service_id  INTEGER NOT NULL REFERENCES services(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (pairing_id, service_id)
) WITHOUT ROWID;

CREATE TABLE pairing_requests (
    id          BLOB PRIMARY KEY,
    tablet_id   INTEGER NOT NULL REFERENCES tablets(id),
    code        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    pairing_id  BLOB REFERENCES pairings(id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX pairing_requests_open_code ON pairing_requests(code) WHERE pairing_id IS NULL;

CREATE TABLE visits (
    id               BLOB PRIMARY KEY,
    pairing_id       BLOB NOT NULL REFERENCES pairings(id),
    tablet_id        INTEGER NOT NULL REFERENCES tablets(id),
    employee_id      INTEGER NOT NULL REFERENCES employees(id),
    section_id       INTEGER NOT NULL REFERENCES sections(id),
    department_id    INTEGER NOT NULL REFERENCES departments(id),
    service_id       INTEGER NOT NULL REFERENCES services(id),
    started_at       INTEGER NOT NULL,  -- tablet clock
    ended_at         INTEGER NOT NULL,  -- tablet clock
    rating           INTEGER CHECK (rating IN (1, 2, 3)),
    has_recording    INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,  -- server clock
    clock_offset_ms  INTEGER NOT NULL   -- tablet minus server at the sync that delivered it
) WITHOUT ROWID;
CREATE INDEX visits_by_employee ON visits(employee_id, ended_at);
CREATE INDEX visits_bad ON visits(received_at) WHERE rating = 1;

CREATE TABLE sync_log (
    id               INTEGER PRIMARY KEY,
    tablet_id        INTEGER NOT NULL REFERENCES tablets(id),
    received_at      INTEGER NOT NULL,
    clock_offset_ms  INTEGER NOT NULL,
    visits           INTEGER NOT NULL
);
CREATE INDEX sync_log_by_tablet ON sync_log(tablet_id, received_at);

-- An upload in progress: what the tablet promised. The bytes are in recordings/incoming/.
CREATE TABLE recording_uploads (
    visit_id    BLOB PRIMARY KEY REFERENCES visits(id),
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    started_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE recordings (
    visit_id     BLOB PRIMARY KEY REFERENCES visits(id),
    size_bytes   INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL
) WITHOUT ROWID;
