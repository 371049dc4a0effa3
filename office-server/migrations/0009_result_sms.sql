-- «Результат готов»: the office's case number on a visit, the visitor's consent to be told by
-- SMS with the number it goes to, the outbox of those messages and their delivery reports.

-- The office's case (application) number: its case-management system knows this, not the
-- visit's id. Unique in the office.
ALTER TABLE visits ADD COLUMN case_number TEXT;
CREATE UNIQUE INDEX visits_by_case ON visits(case_number) WHERE case_number IS NOT NULL;

-- The number one visit's result is to be told to, given with the visitor's consent; deleted
-- once the message is delivered, or at expires_at. Its visit may not have synced yet.
CREATE TABLE sms_consents (
    visit_id    BLOB PRIMARY KEY,
    phone       TEXT NOT NULL,   -- E.164: +79123456789
    masked      TEXT NOT NULL,   -- as people are shown it: +7 912 ***-**-89
    given_at    INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sms_consents_by_expiry ON sms_consents(expires_at);

-- One message per ready event: a visit's result becomes ready once. `sending` is written
-- before the gateway is asked, so a crash mid-request leaves it there and the next start
-- makes it `unconfirmed`: never sent twice without a person deciding.
CREATE TABLE sms_messages (
    id               INTEGER PRIMARY KEY,
    visit_id         BLOB NOT NULL UNIQUE REFERENCES visits(id),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'delivered',
                                                    'failed', 'unconfirmed', 'cancelled')),
    text             TEXT NOT NULL,
    masked           TEXT NOT NULL,   -- kept after the number is deleted
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    -- The random secret in this message's delivery-report address.
    report_key       BLOB NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    decided_by       INTEGER REFERENCES accounts(id)
);
CREATE INDEX sms_messages_due ON sms_messages(next_attempt_at) WHERE state = 'pending';
CREATE INDEX sms_messages_by_time ON sms_messages(created_at);

-- Delivery reports as the gateway gave them: Kannel's types 1 delivered, 2 undelivered,
-- 4 queued at the operator, 8 accepted by the operator, 16 rejected by the operator.
CREATE TABLE sms_reports (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES sms_messages(id),
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sms_reports_by_message ON sms_reports(message_id, at);

-- Marking a result ready and a person's decision on a message are audited. SQLite cannot
-- change a CHECK constraint: the table is made again, as in 0008.
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
        'result_ready', 'sms_resend', 'sms_cancel')),
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
