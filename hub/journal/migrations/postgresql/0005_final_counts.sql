-- /metrics counts applications and steps by state. The finished ones (applications completed, rejected
-- or abandoned; steps done or abandoned) are most of a journal's rows and grow with its history, so they
-- are counted here as they change, in the same transaction, by triggers: every write path (intake,
-- steps, revisions, operator actions, journal moves) keeps them exact without knowing of them. A trigger
-- runs only when an application or a step enters or leaves a finished state. Open states are still
-- counted from their index ranges. The triggers only append a row to final_count_deltas: transactions of
-- several hub processes that finish steps at once never wait for each other on a counter row (as they
-- would on one updated in place, locked until each commit). A scrape folds the deltas into final_counts
-- (`hub.journal.counts`); a count is final_counts plus the deltas not folded yet.
-- Writers wait until the counts are filled and the triggers are in place (a few seconds with a million
-- applications): a change between the fill and the triggers would be counted by neither.
LOCK TABLE applications, tasks IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE final_counts (
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, step, target, state)
);
CREATE TABLE final_count_deltas (
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL
);
INSERT INTO final_counts (kind, step, target, state, n)
    SELECT 'application', '', '', state, COUNT(*) FROM applications
    WHERE state IN ('completed', 'rejected', 'abandoned') GROUP BY state;
INSERT INTO final_counts (kind, step, target, state, n)
    SELECT 'task', step, target, state, COUNT(*) FROM tasks
    WHERE state IN ('done', 'abandoned') GROUP BY step, target, state;
CREATE FUNCTION count_final(TEXT, TEXT, TEXT, TEXT, INTEGER) RETURNS VOID LANGUAGE SQL AS $$
    INSERT INTO final_count_deltas VALUES ($1, $2, $3, $4, $5)
$$;
CREATE FUNCTION count_final_applications() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.state IN ('completed', 'rejected', 'abandoned') THEN
        PERFORM count_final('application', '', '', OLD.state, -1); END IF; IF TG_OP <> 'DELETE'
        AND NEW.state IN ('completed', 'rejected', 'abandoned') THEN
        PERFORM count_final('application', '', '', NEW.state, 1);
    END IF; RETURN NULL; END $$;
CREATE FUNCTION count_final_tasks() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.state IN ('done', 'abandoned') THEN
        PERFORM count_final('task', OLD.step, OLD.target, OLD.state, -1); END IF; IF TG_OP <> 'DELETE'
        AND NEW.state IN ('done', 'abandoned') THEN
        PERFORM count_final('task', NEW.step, NEW.target, NEW.state, 1);
    END IF; RETURN NULL; END $$;
CREATE TRIGGER applications_final_insert AFTER INSERT ON applications FOR EACH ROW
WHEN (NEW.state IN ('completed', 'rejected', 'abandoned')) EXECUTE FUNCTION count_final_applications();
CREATE TRIGGER applications_final_update AFTER UPDATE OF state ON applications FOR EACH ROW
WHEN (NEW.state IS DISTINCT FROM OLD.state AND (OLD.state IN ('completed', 'rejected', 'abandoned')
    OR NEW.state IN ('completed', 'rejected', 'abandoned'))) EXECUTE FUNCTION count_final_applications();
CREATE TRIGGER applications_final_delete AFTER DELETE ON applications FOR EACH ROW
WHEN (OLD.state IN ('completed', 'rejected', 'abandoned')) EXECUTE FUNCTION count_final_applications();
CREATE TRIGGER tasks_final_insert AFTER INSERT ON tasks FOR EACH ROW
WHEN (NEW.state IN ('done', 'abandoned')) EXECUTE FUNCTION count_final_tasks();
CREATE TRIGGER tasks_final_update AFTER UPDATE OF state, step, target ON tasks FOR EACH ROW
WHEN ((NEW.state, NEW.step, NEW.target) IS DISTINCT FROM (OLD.state, OLD.step, OLD.target)
    AND (OLD.state IN ('done', 'abandoned') OR NEW.state IN ('done', 'abandoned')))
EXECUTE FUNCTION count_final_tasks();
CREATE TRIGGER tasks_final_delete AFTER DELETE ON tasks FOR EACH ROW
WHEN (OLD.state IN ('done', 'abandoned')) EXECUTE FUNCTION count_final_tasks();
