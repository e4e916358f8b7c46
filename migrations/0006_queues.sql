-- The queues the gateways declare (`--queues`), recorded by each gateway at
-- start, so a worker started with a queue no gateway accepts tasks for can
-- say so. A union over every gateway that ever started on this database:
-- dropping a queue from a gateway's list does not remove its row.
CREATE TABLE IF NOT EXISTS queues (
    name text PRIMARY KEY,
    declared_at timestamptz NOT NULL DEFAULT now()
);
