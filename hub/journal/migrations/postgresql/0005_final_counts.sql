-- /metrics counts applications and steps by state. The finished ones (applications completed, rejected
-- or abandoned; steps done or abandoned) are most of a journal's rows and grow with its history, so they
-- are counted here as they change, in the same transaction, by triggers: every write path (intake,
-- steps, revisions, operator actions, journal moves) keeps them exact without knowing of them. A row
-- changes only when an application or a step enters or leaves a finished state (one upsert). Open
-- states are still counted from their index ranges. Each connection adds to the rows of its own shard
-- (its server process id modulo 64): concurrent transactions of several hub processes do not wait on one
-- counter row (a rare shared shard only waits, and a deadlock is retried as any other); a count is the
-- sum over its shards.
CREATE TABLE final_counts (
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, step, target, state, shard)
);
INSERT INTO final_counts (kind, step, target, state, shard, n)
    SELECT 'application', '', '', state, 0, COUNT(*) FROM applications
    WHERE state IN ('completed', 'rejected', 'abandoned') GROUP BY state;
INSERT INTO final_counts (kind, step, target, state, shard, n)
    SELECT 'task', step, target, state, 0, COUNT(*) FROM tasks
    WHERE state IN ('done', 'abandoned') GROUP BY step, target, state;
CREATE FUNCTION count_final(TEXT, TEXT, TEXT, TEXT, INTEGER) RETURNS VOID LANGUAGE SQL AS $$
    INSERT INTO final_counts VALUES ($1, $2, $3, $4, pg_backend_pid() % 64, $5)
    ON CONFLICT (kind, step, target, state, shard) DO UPDATE SET n = final_counts.n + excluded.n
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
