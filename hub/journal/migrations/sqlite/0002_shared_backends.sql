-- What lets the state rules run unchanged on PostgreSQL too (issue 12).
-- The normalised error text of a failed step, kept beside the text (dead letters are grouped by it;
-- SQLite computed it in a Python function, which PostgreSQL cannot call). Filled in by the backfill.
ALTER TABLE tasks ADD COLUMN error_group TEXT;
-- Every target that ever had a task: a claim asks per target (one index walk each), and with several
-- processes it serialises on the target's row here instead of on a lock of one process.
CREATE TABLE task_targets (target TEXT PRIMARY KEY);
INSERT INTO task_targets (target) SELECT DISTINCT target FROM tasks;
