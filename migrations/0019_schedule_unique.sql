-- The `unique` option in a schedule's task template (docs/schedules.md,
-- docs/unique.md): a fired task takes the template's unique key, as a
-- POST /tasks body with the option does; a tick whose key another task
-- holds fires nothing and is recorded as skipped (reason `unique`).
-- NULL unique_key: no option. New columns of `schedules` only.
ALTER TABLE schedules ADD COLUMN IF NOT EXISTS unique_key text,
                      ADD COLUMN IF NOT EXISTS unique_for_seconds bigint,
                      ADD COLUMN IF NOT EXISTS unique_while text[];
