-- The visitor's personal account: people who signed in through the city portal's OpenID
-- Connect provider, the visits they attached, their sessions, and sign-ins under way. The
-- portal's subject id and the name claims are kept, nothing else; deleting a visitor deletes
-- the link to the person, never the visit or its feedback.
CREATE TABLE visitors (
    id           INTEGER PRIMARY KEY,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    family_name  TEXT NOT NULL DEFAULT '',
    given_name   TEXT NOT NULL DEFAULT '',
    middle_name  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (issuer, subject)
);

-- A visit belongs to one person: the first to attach it. Its visit may not have synced yet.
CREATE TABLE visitor_visits (
    visit_id     BLOB PRIMARY KEY,
    visitor_id   INTEGER NOT NULL REFERENCES visitors(id) ON DELETE CASCADE,
    attached_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX visitor_visits_by_visitor ON visitor_visits(visitor_id, attached_at);

-- Stored under the digest of the cookie's token, apart from the staff's sessions.
CREATE TABLE visitor_sessions (
    token_digest  BLOB PRIMARY KEY,
    visitor_id    INTEGER NOT NULL REFERENCES visitors(id) ON DELETE CASCADE,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX visitor_sessions_by_visitor ON visitor_sessions(visitor_id);

-- A sign-in sent to the portal and not yet back: under the digest of its `state`, used once.
CREATE TABLE visitor_sign_ins (
    state_digest   BLOB PRIMARY KEY,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    visit_id       BLOB,
    expires_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- When the visitor's documents were ready (set by the office; NULL: в работе).
ALTER TABLE visits ADD COLUMN result_ready_at INTEGER;

-- Each showing of a visitor's name to a head is audited, once per account, visit and session
-- like a playback. SQLite cannot change a CHECK constraint: the table is made again, as in 0007.
CREATE TABLE audit_log_new (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL: done from the server's command line.
    account_id   INTEGER REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN (
        'play', 'download', 'export',
        'directory_change', 'account_create', 'password_reset',
        'tablet_approve', 'tablet_readmit', 'tablet_rename', 'tablet_revoke',
        'feedback_answer', 'feedback_hide', 'feedback_show', 'visitor_shown')),
    visit_id     BLOB,
    -- A digest of the session's token digest: tells sessions apart, reveals nothing.
    session_tag  TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
INSERT INTO audit_log_new (id, at, account_id, action, visit_id, session_tag, detail)
    SELECT id, at, account_id, action, visit_id, session_tag, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_by_time ON audit_log(at);
CREATE UNIQUE INDEX audit_log_play_once ON audit_log(account_id, visit_id, session_tag)
    WHERE action = 'play';
CREATE INDEX audit_log_deliveries ON audit_log(visit_id, account_id, session_tag, action)
    WHERE action IN ('play', 'download', 'visitor_shown');
