-- The visitor's feedback from their phone (a link the tablet signs; see shared-model's
-- `feedback` module).

-- The Ed25519 public key (32 bytes) a tablet signs its feedback links with: sent at enrolment,
-- or at the first sync of a tablet enrolled before feedback links existed. The first key
-- registered is kept; a readmitted tablet brings its enrolment's key.
ALTER TABLE enrolments ADD COLUMN feedback_key BLOB;
ALTER TABLE tablets ADD COLUMN feedback_key BLOB;

-- When a link was first opened: a link whose visit has not synced yet may be used for a
-- while after that (the tablet's clock is never trusted for it).
CREATE TABLE feedback_links (
    visit_id         BLOB PRIMARY KEY,
    tablet_id        INTEGER NOT NULL REFERENCES tablets(id),
    first_opened_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- One submission per visit. It may arrive before its visit: `joined_at` stays NULL until the
-- visit is stored, and only then is it counted in the feedback totals. The comment is personal
-- data and is cleared when its keeping time is over.
CREATE TABLE feedback (
    visit_id      BLOB PRIMARY KEY,
    tablet_id     INTEGER NOT NULL REFERENCES tablets(id),
    submitted_at  INTEGER NOT NULL,
    comment       TEXT,
    thanks        INTEGER NOT NULL CHECK (thanks IN (0, 1)),
    joined_at     INTEGER,
    answer        TEXT,
    answered_by   INTEGER REFERENCES accounts(id),
    answered_at   INTEGER,
    hidden_by     INTEGER REFERENCES accounts(id),
    hidden_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX feedback_waiting ON feedback(submitted_at) WHERE joined_at IS NULL;

-- The scores, one per criterion of the configured list (its keys).
CREATE TABLE feedback_scores (
    visit_id   BLOB NOT NULL REFERENCES feedback(visit_id) ON DELETE CASCADE,
    criterion  TEXT NOT NULL,
    score      INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    PRIMARY KEY (visit_id, criterion)
) WITHOUT ROWID;

-- Feedback totals in the report calendar (levels and periods as in report_totals), kept when a
-- submission joins its visit: per criterion the sum and number of scores; criterion '' counts
-- the submissions themselves (`score_sum` then counts the thanks).
CREATE TABLE feedback_totals (
    level          INTEGER NOT NULL,
    period         INTEGER NOT NULL,
    department_id  INTEGER NOT NULL,
    section_id     INTEGER NOT NULL,
    employee_id    INTEGER NOT NULL,
    service_id     INTEGER NOT NULL,
    criterion      TEXT NOT NULL,
    score_sum      INTEGER NOT NULL,
    scores         INTEGER NOT NULL,
    PRIMARY KEY (level, period, department_id, section_id, employee_id, service_id, criterion)
) WITHOUT ROWID;
