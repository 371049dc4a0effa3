-- The heads' review: every verdict kept, and each recording's analysis for the player.

-- Every verdict ever given on a Плохо visit; `verdicts` keeps the latest, the verdict of record.
CREATE TABLE verdict_history (
    id          INTEGER PRIMARY KEY,
    visit_id    BLOB NOT NULL REFERENCES visits(id),
    correct     INTEGER NOT NULL CHECK (correct IN (0, 1)),
    comment     TEXT NOT NULL DEFAULT '',
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    decided_at  INTEGER NOT NULL
);
CREATE INDEX verdict_history_by_visit ON verdict_history(visit_id, id);
INSERT INTO verdict_history (visit_id, correct, comment, account_id, decided_at)
    SELECT visit_id, correct, comment, account_id, decided_at FROM verdicts ORDER BY decided_at;

-- A stored recording's waveform and speech segments (JSON), computed when it arrives and
-- deleted with its audio by the retention rule. NULL: it could not be decoded; the page
-- offers the plain player and nothing tries again.
CREATE TABLE recording_analysis (
    visit_id  BLOB PRIMARY KEY REFERENCES recordings(visit_id),
    analysis  TEXT
) WITHOUT ROWID;
