-- The Kafka partitions each worker owns, by topic ({"<topic>": [0, 3, 7]}), as
-- of its last heartbeat (a worker also beats right after a rebalance), so
-- operators and tools can see the consumer group's assignment in GET /workers.
ALTER TABLE workers ADD COLUMN partitions jsonb NOT NULL DEFAULT '{}'::jsonb;
