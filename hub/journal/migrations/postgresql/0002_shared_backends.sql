-- What lets the state rules run unchanged on PostgreSQL too (issue 12): sqlite/0002_shared_backends.sql.
-- The normalised error text of a failed step, kept beside the text (dead letters are grouped by it).
-- Filled in by the backfill (hub.journal.migrations).
ALTER TABLE tasks ADD COLUMN error_group text;
-- Every target that ever had a task: a claim asks per target (one index walk each), and with several
-- processes it serialises on the target's row here.
CREATE TABLE task_targets (target text PRIMARY KEY);
INSERT INTO task_targets (target) SELECT DISTINCT target FROM tasks;
