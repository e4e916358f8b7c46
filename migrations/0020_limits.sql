-- Limits (issue 28, docs/limits.md): concurrency and rate limits per tenant,
-- per bucket, exact across the cluster. A limited task over its limit is
-- `held` (a new status) and is released to `queued` under the locks of all
-- its buckets; slots are counted from the task rows under those locks.
--
-- `held` (and workflows' `waiting`, migration 0018) are admitted here. The
-- previous release (c252765) reads a status it does not know as a
-- non-terminal `Other`, and counts it through `tasks_other_status` (0015).
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('waiting', 'held', 'queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled'))
    NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_status_check;

-- The one thing the hot path needs: the claim returns it, so only a limited
-- task's outcome takes the limits path. A constant default: no table rewrite.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS limited boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS limits (
    tenant           text NOT NULL,
    name             text NOT NULL,
    -- Per bucket; NULL: no concurrency limit; 0 pauses the limit.
    concurrency      integer CHECK (concurrency >= 0),
    -- Per bucket: at most rate_count releases in any window of rate_per_seconds.
    rate_count       integer CHECK (rate_count >= 1),
    rate_per_seconds double precision CHECK (rate_per_seconds > 0),
    -- JSON pointer into {"args": [...], "kwargs": {...}}; NULL: one bucket, `(all)`.
    -- Fixed once created: tasks are bucketed at submit.
    key_pointer      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name),
    CHECK ((rate_count IS NULL) = (rate_per_seconds IS NULL)),
    CHECK (concurrency IS NOT NULL OR rate_count IS NOT NULL)
);

-- A limit's `tasks`: every task of these names takes the limit. The insert
-- probes the primary key once per row (an empty table for most deployments).
CREATE TABLE IF NOT EXISTS limit_tasks (
    tenant     text NOT NULL,
    task_name  text NOT NULL,
    limit_name text NOT NULL,
    PRIMARY KEY (tenant, task_name, limit_name),
    FOREIGN KEY (tenant, limit_name) REFERENCES limits (tenant, name) ON DELETE CASCADE
);

-- One row per bucket of a limit; the row is the bucket's lock (FOR UPDATE),
-- always taken in `id` order.
CREATE TABLE IF NOT EXISTS limit_buckets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          text NOT NULL,
    limit_name      text NOT NULL,
    -- Canonical JSON of the key's value, `(unresolved)` or `(all)`.
    bucket          text NOT NULL,
    -- Round-robin: a value of limit_turns at the bucket's last release
    -- (least recently served first).
    last_turn       bigint NOT NULL DEFAULT 0,
    -- The last release time, so release times are monotonic per bucket.
    last_release_at timestamptz,
    UNIQUE (tenant, limit_name, bucket),
    FOREIGN KEY (tenant, limit_name) REFERENCES limits (tenant, name) ON DELETE CASCADE
);
CREATE SEQUENCE IF NOT EXISTS limit_turns;

-- A task's memberships, fixed at submit. `held`: the task waits for room
-- (the bucket's queue, oldest `seq` first). `slot`: released and maybe still
-- `queued`/`processing`; only a hint that bounds the count's scan: the count
-- reads the task's status, so a flag left set never holds a slot.
CREATE TABLE IF NOT EXISTS task_limits (
    task_id   text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    bucket_id bigint NOT NULL REFERENCES limit_buckets (id) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    held      boolean NOT NULL,
    slot      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (task_id, bucket_id)
);
CREATE INDEX IF NOT EXISTS task_limits_held ON task_limits (bucket_id, seq) WHERE held;
CREATE INDEX IF NOT EXISTS task_limits_slot ON task_limits (bucket_id) WHERE slot;
-- DELETE of a bucket (its limit deleted) finds its memberships.
CREATE INDEX IF NOT EXISTS task_limits_bucket ON task_limits (bucket_id);

-- One row per release of a rate-limited bucket: the window's evidence,
-- independent of the task (a retry is a new release; a task may expire).
-- The leader deletes rows older than their limit's window.
CREATE TABLE IF NOT EXISTS limit_releases (
    bucket_id   bigint NOT NULL REFERENCES limit_buckets (id) ON DELETE CASCADE,
    released_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS limit_releases_window ON limit_releases (bucket_id, released_at);
