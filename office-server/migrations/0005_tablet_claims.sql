-- What a tablet may claim (hardening, part 2).
--
-- When the server first answered a tablet with its pairing ended (`end_told_at`), and the
-- tablet's first request after that answer (`end_acknowledged_at`): a visit under the pairing
-- that claims to end later than that request was made after the tablet knew, and is refused.
ALTER TABLE pairings ADD COLUMN end_told_at INTEGER;
ALTER TABLE pairings ADD COLUMN end_acknowledged_at INTEGER;
CREATE INDEX pairings_end_unacknowledged ON pairings(tablet_id)
    WHERE end_told_at IS NOT NULL AND end_acknowledged_at IS NULL;

-- A tablet's visits by their corrected end, to find one that overlaps a new one.
CREATE INDEX visits_by_tablet_at ON visits(tablet_id, ended_at - clock_offset_ms);

-- Every change an administrator makes is audited too, and the command line may be the actor
-- (no account). SQLite cannot change a CHECK constraint: the table is made again.
CREATE TABLE audit_log_new (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL: done from the server's command line.
    account_id   INTEGER REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN (
        'play', 'download', 'export',
        'directory_change', 'account_create', 'password_reset',
        'tablet_approve', 'tablet_readmit', 'tablet_rename', 'tablet_revoke')),
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
