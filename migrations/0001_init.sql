-- yadtq schema. PostgreSQL is the system of record; Kafka only dispatches.
-- args, kwargs and result are `json` (not jsonb) so text, key order, NUL
-- escapes and large numbers come back exactly as sent (design guarantee 8).

CREATE TABLE tasks (
    id                  text PRIMARY KEY,
    seq                 bigint GENERATED ALWAYS AS IDENTITY,
    name                text NOT NULL,
    args                json NOT NULL,
    kwargs              json NOT NULL,
    queue               text NOT NULL DEFAULT 'default',
    status              text NOT NULL CHECK (status IN
                          ('queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled')),
    attempts            integer NOT NULL DEFAULT 0,
    max_retries         integer NOT NULL DEFAULT 3,
    timeout_seconds     double precision NOT NULL DEFAULT 300,
    run_at              timestamptz,
    result              json,
    error               jsonb,
    progress            jsonb,
    worker_id           uuid,
    cancel_requested_at timestamptz,
    published_at        timestamptz,
    request_hash        text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz
);

-- Hot queries only: the scheduler (status + run_at), the rescuer (a dead
-- worker's processing tasks) and the publisher (queued rows not yet sent).
CREATE INDEX tasks_status_run_at ON tasks (status, run_at);
CREATE INDEX tasks_processing_worker ON tasks (worker_id) WHERE status = 'processing';
CREATE INDEX tasks_unpublished ON tasks (seq) WHERE status = 'queued' AND published_at IS NULL;

-- One row per claim: the execution history a user can read.
CREATE TABLE task_attempts (
    task_id     text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    worker_id   uuid NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text CHECK (outcome IN ('success', 'failed', 'worker_lost', 'cancelled')),
    error       jsonb,
    PRIMARY KEY (task_id, attempt)
);

-- One row per worker process start. `alive` is derived from
-- last_heartbeat_at against the database clock, never stored.
CREATE TABLE workers (
    id                uuid PRIMARY KEY,
    hostname          text NOT NULL,
    pid               integer NOT NULL,
    version           text NOT NULL,
    queues            text[] NOT NULL,
    task_names        text[] NOT NULL,
    concurrency       integer NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at        timestamptz,
    in_flight         integer NOT NULL DEFAULT 0,
    processed         bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0
);
