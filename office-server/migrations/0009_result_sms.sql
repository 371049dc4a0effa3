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
