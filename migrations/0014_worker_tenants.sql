-- The tenants a worker was started for (its `--tenants`), shown by
-- GET /workers; NULL for a worker of the shared topics. Additive and
-- nullable: the previous release's workers insert rows without it.
ALTER TABLE workers ADD COLUMN IF NOT EXISTS tenants text[];
