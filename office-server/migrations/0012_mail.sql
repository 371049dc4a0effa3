-- E-mail notifications: an account's address and how it wants them, and the outbox.
ALTER TABLE accounts ADD COLUMN email TEXT;
-- 'each': a message per event; 'digest': one a day with everything since; 'off': none.
ALTER TABLE accounts ADD COLUMN mail_mode TEXT NOT NULL DEFAULT 'each'
    CHECK (mail_mode IN ('each', 'digest', 'off'));

-- One row per event an account is told of. `event_key` names the event (a tablet's silence
-- since a moment, an alert, a day's overdue verdicts, a failed backup), so noticing it again
-- adds nothing. Digest rows are due at the next digest time and go out together.
CREATE TABLE mail_outbox (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    event_key   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    digest      INTEGER NOT NULL CHECK (digest IN (0, 1)),
    created_at  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     INTEGER,
    failed_at   INTEGER,
    last_error  TEXT NOT NULL DEFAULT '',
    UNIQUE (account_id, event_key)
);
CREATE INDEX mail_outbox_due ON mail_outbox(due_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- Changing where an account's notifications go is audited (they name employees and tablets).
CREATE TABLE audit_log_new (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL: done from the server's command line, or by the case-management system.
    account_id   INTEGER REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN (
        'play', 'download', 'export',
        'directory_change', 'account_create', 'password_reset', 'account_mail',
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
