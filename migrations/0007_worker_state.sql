-- What each worker reports of itself with every heartbeat (GET /workers):
-- 'joining' (not yet a member of its consumer group, or left it), 'ready'
-- (joined, owns partitions, not fenced), 'idle' (joined, but no partitions
-- for longer than the dead-after threshold: normal with more workers than
-- partitions) or 'fenced' (no heartbeat for the fence threshold; takes no
-- task). Text with a CHECK rather than an enum type: a later state is one
-- constraint swap, with no type to alter while old binaries run.
ALTER TABLE workers ADD COLUMN state text NOT NULL DEFAULT 'joining'
    CHECK (state IN ('joining', 'ready', 'idle', 'fenced'));
