-- The office's answers to visitors' feedback and the hiding of a comment are audited. SQLite
-- cannot change a CHECK constraint: the table is made again, as in 0005.
CREATE TABLE audit_log_new (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL: done from the server's command line.
    account_id   INTEGER REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN (
        'play', 'download', 'export',
        'directory_change', 'account_create', 'password_reset',
        'tablet_approve', 'tablet_readmit', 'tablet_rename', 'tablet_revoke',
        'feedback_answer', 'feedback_hide', 'feedback_show')),
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
    WHERE action IN ('play', 'download');
