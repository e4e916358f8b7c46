-- Schedules (docs/schedules.md): periodic tasks fired by the maintenance
-- leader. New tables only; nothing on `tasks` changes (a fired task's
-- schedule and tick are in its id, `sched:<schedule id>:<unix seconds>`).
CREATE TABLE IF NOT EXISTS schedules (
    -- auth::task_key(tenant, id): the tenant's schedule id under its prefix.
    key text PRIMARY KEY,
    tenant text NOT NULL,
    -- Insertion order, the keyset cursor of GET /schedules.
    seq bigserial NOT NULL,
    -- {"cron": ...} or {"every": ..., "offset": ...}, as accepted.
    spec jsonb NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    jitter_seconds double precision NOT NULL DEFAULT 0,
    -- The task template, validated as POST /tasks validates a body.
    name text NOT NULL,
    args json NOT NULL,
    kwargs json NOT NULL,
    queue text NOT NULL,
    max_retries integer NOT NULL,
    timeout_seconds double precision NOT NULL,
    retry_backoff_base double precision,
    retry_backoff_cap double precision,
    task_hash text NOT NULL,
    overlap text NOT NULL CHECK (overlap IN ('skip', 'buffer_one', 'buffer_all', 'cancel_other', 'allow_all')),
    catchup_window_seconds double precision NOT NULL,
    start_at timestamptz,
    end_at timestamptz,
    max_runs bigint,
    paused boolean NOT NULL DEFAULT false,
    -- Bumped by every edit: a fire planned on an older version changes nothing.
    version bigint NOT NULL DEFAULT 1,
    -- Bumped by every fire: a plan made on an older state changes nothing.
    rev bigint NOT NULL DEFAULT 0,
    -- Hash of the create request, compared when the id is created again.
    request_hash text NOT NULL,
    -- The next grid tick not yet fired or skipped; NULL when none is left.
    next_tick timestamptz,
    -- The latest grid tick fired or skipped.
    last_tick timestamptz,
    -- Key of the task fired last: the overlap policy looks at its status.
    last_task text,
    -- Id suffixes of runs waiting for the last task to end (buffer_one, buffer_all).
    buffered text[] NOT NULL DEFAULT '{}',
    runs bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS schedules_tenant_seq ON schedules (tenant, seq);
-- The leader's pass: schedules with a tick due, or runs buffered.
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_tick) WHERE NOT paused;
CREATE INDEX IF NOT EXISTS schedules_buffered ON schedules (key) WHERE NOT paused AND cardinality(buffered) > 0;

-- What became of each tick: fired as a task, buffered, or skipped and why.
CREATE TABLE IF NOT EXISTS schedule_fires (
    seq bigserial PRIMARY KEY,
    schedule text NOT NULL REFERENCES schedules (key) ON DELETE CASCADE,
    -- The tick (scheduled_for); for a row standing for many skipped ticks, the first.
    tick timestamptz NOT NULL,
    kind text NOT NULL CHECK (kind IN ('tick', 'trigger', 'backfill')),
    outcome text NOT NULL CHECK (outcome IN ('fired', 'skipped', 'buffered')),
    -- Why it was skipped: overlap, catchup_window.
    reason text,
    -- How many ticks this row stands for (a catch-up skip counts them all in one row).
    ticks bigint NOT NULL DEFAULT 1,
    -- Key of the task fired.
    task text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS schedule_fires_schedule ON schedule_fires (schedule, seq);
