-- The claim asks each target's due steps "ORDER BY due_at, id LIMIT room". With the index ending in
-- due_at, the id order had to be sorted in: where the planner's statistics expect few waiting steps (a
-- large journal analysed when it was quiet), PostgreSQL read and sorted every due step of the target to
-- return a handful (2x the claim's statement time with 1 M finished applications). With id in the
-- index the walk returns them in order and stops after `room`, whatever the statistics say.
DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (state, target, due_at, id);
