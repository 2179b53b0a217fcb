-- /metrics counts applications and steps by state. The finished ones (applications completed, rejected
-- or abandoned; steps done or abandoned) are most of a journal's rows and grow with its history, so they
-- are counted here as they change, in the same transaction, by triggers: every write path (intake,
-- steps, revisions, operator actions, journal moves) keeps them exact without knowing of them. A row
-- changes only when an application or a step enters or leaves a finished state (one upsert). Open
-- states are still counted from their index ranges. PostgreSQL's triggers append to
-- final_count_deltas instead (its writers run concurrently) and the scrape folds them in; SQLite has
-- one writer, its triggers add to final_counts directly and final_count_deltas stays empty.
-- IF NOT EXISTS: a journal taken back to an older schema by hand (the tests do) migrates again.
CREATE TABLE IF NOT EXISTS final_counts (
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (kind, step, target, state)
);
CREATE TABLE IF NOT EXISTS final_count_deltas (
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL
);
DELETE FROM final_counts;
INSERT INTO final_counts (kind, step, target, state, n)
    SELECT 'application', '', '', state, COUNT(*) FROM applications
    WHERE state IN ('completed', 'rejected', 'abandoned') GROUP BY state;
INSERT INTO final_counts (kind, step, target, state, n)
    SELECT 'task', step, target, state, COUNT(*) FROM tasks
    WHERE state IN ('done', 'abandoned') GROUP BY step, target, state;
CREATE TRIGGER IF NOT EXISTS applications_final_insert AFTER INSERT ON applications
WHEN new.state IN ('completed', 'rejected', 'abandoned') BEGIN
    INSERT INTO final_counts VALUES ('application', '', '', new.state, 1)
    ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS applications_final_update AFTER UPDATE OF state ON applications
WHEN new.state IS NOT old.state
AND (old.state IN ('completed', 'rejected', 'abandoned') OR new.state IN ('completed', 'rejected', 'abandoned'))
BEGIN
    INSERT INTO final_counts SELECT 'application', '', '', old.state, -1
    WHERE old.state IN ('completed', 'rejected', 'abandoned') ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n - 1; INSERT INTO final_counts SELECT 'application', '', '', new.state, 1
    WHERE new.state IN ('completed', 'rejected', 'abandoned') ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS applications_final_delete AFTER DELETE ON applications
WHEN old.state IN ('completed', 'rejected', 'abandoned') BEGIN
    UPDATE final_counts SET n = n - 1
    WHERE (kind, step, target, state) = ('application', '', '', old.state); END;
CREATE TRIGGER IF NOT EXISTS tasks_final_insert AFTER INSERT ON tasks
WHEN new.state IN ('done', 'abandoned') BEGIN
    INSERT INTO final_counts VALUES ('task', new.step, new.target, new.state, 1)
    ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS tasks_final_update AFTER UPDATE OF state, step, target ON tasks
WHEN (new.state IS NOT old.state OR new.step IS NOT old.step OR new.target IS NOT old.target)
AND (old.state IN ('done', 'abandoned') OR new.state IN ('done', 'abandoned'))
BEGIN
    INSERT INTO final_counts SELECT 'task', old.step, old.target, old.state, -1
    WHERE old.state IN ('done', 'abandoned') ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n - 1; INSERT INTO final_counts SELECT 'task', new.step, new.target, new.state, 1
    WHERE new.state IN ('done', 'abandoned') ON CONFLICT (kind, step, target, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS tasks_final_delete AFTER DELETE ON tasks
WHEN old.state IN ('done', 'abandoned') BEGIN
    UPDATE final_counts SET n = n - 1
    WHERE (kind, step, target, state) = ('task', old.step, old.target, old.state); END;
