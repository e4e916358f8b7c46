-- Workflows (issue 27): DAGs of tasks. A node is an ordinary task (its id
-- `wf:<workflow id>:<ref>` under the tenant); what makes it a node lives in
-- the tables below, so a plain task pays nothing for them: no column and no
-- index on `tasks` is added.

-- A node whose parents have not all finished is `waiting`. The previous
-- release (e32e192) reads any status it does not know as a non-terminal
-- `Other`, so the value is safe to write once it runs everywhere.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('waiting', 'queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled')) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_status_check;

CREATE TABLE IF NOT EXISTS workflows (
    -- Stored key: the tenant's workflow id through auth::task_key.
    id           text PRIMARY KEY,
    tenant       text NOT NULL,
    -- Hash of the submitted body: the same id again with another body is 409.
    request_hash text NOT NULL,
    -- Set by POST /workflows/{id}/cancel; the status is computed from the nodes.
    cancelled_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    seq          bigint GENERATED ALWAYS AS IDENTITY
);
-- GET /workflows: a tenant's workflows, newest first.
CREATE INDEX IF NOT EXISTS workflows_tenant_seq ON workflows (tenant, seq);

CREATE TABLE IF NOT EXISTS workflow_nodes (
    task_id           text PRIMARY KEY,
    workflow_id       text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    ref               text NOT NULL,
    -- Position in the submitted `tasks` array (the order GET shows).
    position          integer NOT NULL,
    -- Parents not yet terminal. Decremented, under this row's lock, in the
    -- transaction that records a parent's terminal outcome; the node leaves
    -- `waiting` when it reaches 0.
    pending           integer NOT NULL,
    -- Parents that ended other than `success`.
    failed_parents    integer NOT NULL DEFAULT 0,
    -- `cancel` (the node ends `cancelled`, kind `parent_failed`) or `run`.
    on_parent_failure text NOT NULL CHECK (on_parent_failure IN ('cancel', 'run')),
    UNIQUE (workflow_id, position)
);

-- One row per dependency. The primary key serves fan-in (a parent's
-- children), the second index a claim's read of its parents' results, the
-- third the cascade when retention deletes a workflow (without it, each
-- deleted workflow would scan every edge).
CREATE TABLE IF NOT EXISTS workflow_edges (
    parent      text NOT NULL,
    child       text NOT NULL,
    workflow_id text NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    PRIMARY KEY (parent, child)
);
CREATE INDEX IF NOT EXISTS workflow_edges_child ON workflow_edges (child);
CREATE INDEX IF NOT EXISTS workflow_edges_workflow ON workflow_edges (workflow_id);

-- The features a process honours (issue 27's mixed-version gate): a
-- workflow is accepted only while every alive worker reports at least the
-- level that performs fan-in. The previous release inserts rows without it (0).
ALTER TABLE workers ADD COLUMN IF NOT EXISTS feature_level integer NOT NULL DEFAULT 0;
