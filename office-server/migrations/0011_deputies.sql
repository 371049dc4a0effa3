-- A head's deputy: covers the head's «Разбор "Плохо"» (the inbox, its recordings, verdicts)
-- until a moment, and nothing else of the head's. One per head; naming another replaces it.
CREATE TABLE deputies (
    head_id    INTEGER PRIMARY KEY REFERENCES accounts(id),
    deputy_id  INTEGER NOT NULL REFERENCES accounts(id),
    until      INTEGER NOT NULL,
    named_at   INTEGER NOT NULL,
    CHECK (head_id <> deputy_id)
);
CREATE INDEX deputies_by_deputy ON deputies(deputy_id, until);

-- Naming and ending a deputy are audited. SQLite cannot change a CHECK constraint: the table
-- is made again, as in 0009.
CREATE TABLE audit_log_new (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL: done from the server's command line, or by the case-management system.
    account_id   INTEGER REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN (
        'play', 'download', 'export',
        'directory_change', 'account_create', 'password_reset',
        'tablet_approve', 'tablet_readmit', 'tablet_rename', 'tablet_revoke',
        'feedback_answer', 'feedback_hide', 'feedback_show', 'visitor_shown',
        'result_ready', 'sms_resend', 'sms_cancel', 'deputy_named', 'deputy_ended')),
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
