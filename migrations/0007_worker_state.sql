-- What each worker reports of itself with every heartbeat (GET /workers):
-- 'joining' (not yet a member of its consumer group, or left it), 'ready'
-- (joined, owns partitions, not fenced), 'idle' (joined, but no partitions
-- for longer than the dead-after threshold: normal with more workers than
-- partitions) or 'fenced' (no heartbeat for the fence threshold; takes no
-- task). A text domain, not an enum, so later states need no type change.
ALTER TABLE workers ADD COLUMN state text NOT NULL DEFAULT 'joining'
    CHECK (state IN ('joining', 'ready', 'idle', 'fenced'));
