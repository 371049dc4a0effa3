-- The heads' dashboard: report totals kept by ingest, verdicts, the audit log, alerts,
-- retention marks. Never edit a migration once it has landed: add a new file instead.
--
-- Where a visit falls in the office's calendar: its end by the tablet's clock, corrected by the
-- clock offset measured at the sync that delivered it: `ended_at - clock_offset_ms`. The
-- dashboard orders, windows and dates visits by that instant.

-- The first migration's indexes were placeholders that nothing queries; these replace them with
-- the corrected instant the dashboard uses.
DROP INDEX visits_by_employee;
DROP INDEX visits_bad;
CREATE INDEX visits_by_employee_at ON visits(employee_id, ended_at - clock_offset_ms);
CREATE INDEX visits_bad_at ON visits(ended_at - clock_offset_ms) WHERE rating = 1;

-- Counts per (department, section, employee, service) for each office-local period, kept up to
-- date in the ingest transaction. The department and section are the visit's (its pairing's),
-- not where the employee works today.
--   level 0: day      period = YYYYMMDD
--   level 1: week     period = YYYYMMDD of its Monday (ISO weeks)
--   level 2: month    period = YYYYMM
--   level 3: quarter  period = YYYY * 10 + quarter (1..4)
--   level 4: year     period = YYYY
-- Every period column of the dashboard reads the rows of one period at one level; "all time"
-- reads the year rows.
CREATE TABLE report_totals (
    level          INTEGER NOT NULL,
    period         INTEGER NOT NULL,
    department_id  INTEGER NOT NULL,
    section_id     INTEGER NOT NULL,
    employee_id    INTEGER NOT NULL,
    service_id     INTEGER NOT NULL,
    visits         INTEGER NOT NULL,  -- rated or not
    good           INTEGER NOT NULL,
    medium         INTEGER NOT NULL,
    bad            INTEGER NOT NULL,
    PRIMARY KEY (level, period, department_id, section_id, employee_id, service_id)
) WITHOUT ROWID;

-- The same per section only: the department tab and the daily trend read these few rows.
CREATE TABLE report_section_totals (
    level          INTEGER NOT NULL,
    period         INTEGER NOT NULL,
    department_id  INTEGER NOT NULL,
    section_id     INTEGER NOT NULL,
    visits         INTEGER NOT NULL,
    good           INTEGER NOT NULL,
    medium         INTEGER NOT NULL,
    bad            INTEGER NOT NULL,
    PRIMARY KEY (level, period, department_id, section_id)
) WITHOUT ROWID;

-- Settings the totals were computed with; a change of time zone rebuilds them.
CREATE TABLE report_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- The head's decision on a Плохо visit: did the specialist act correctly?
CREATE TABLE verdicts (
    visit_id    BLOB PRIMARY KEY REFERENCES visits(id),
    correct     INTEGER NOT NULL CHECK (correct IN (0, 1)),
    comment     TEXT NOT NULL DEFAULT '',
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    decided_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Who did what with personal data: recording playbacks and downloads, report exports.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    action       TEXT NOT NULL CHECK (action IN ('play', 'download', 'export')),
    visit_id     BLOB,
    -- A digest of the session's token digest: tells sessions apart, reveals nothing.
    session_tag  TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_time ON audit_log(at);
-- One playback event per account, recording and session, however many Range requests it takes.
CREATE UNIQUE INDEX audit_log_play_once ON audit_log(account_id, visit_id, session_tag)
    WHERE action = 'play';

-- An employee's share of Плохо crossed the threshold within a sliding window.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    employee_id      INTEGER NOT NULL REFERENCES employees(id),
    section_id       INTEGER NOT NULL REFERENCES sections(id),
    department_id    INTEGER NOT NULL REFERENCES departments(id),
    window_start     INTEGER NOT NULL,
    window_end       INTEGER NOT NULL,
    rated            INTEGER NOT NULL,
    bad              INTEGER NOT NULL,
    raised_at        INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  INTEGER REFERENCES accounts(id)
);
CREATE INDEX alerts_by_employee ON alerts(employee_id, window_end);
CREATE INDEX alerts_open ON alerts(raised_at) WHERE acknowledged_at IS NULL;

-- Set when the retention rule deleted the file; the row stays so the dashboard can say so.
ALTER TABLE recordings ADD COLUMN purged_at INTEGER;
