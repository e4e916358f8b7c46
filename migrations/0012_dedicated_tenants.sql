-- Tenants with workers of their own (docs/security.md, "Dedicated workers").
-- The gateways' `--dedicated-tenants` sets which tenants are dedicated: a
-- gateway makes `dedicated` match its list at start. Rows stay when a tenant
-- stops being dedicated (`dedicated = false`), so the change is remembered:
-- `changed_at` is when a tenant's route last changed, and `rerouted_at` when
-- the maintenance leader last sent its queued tasks again to the route it has
-- now (NULL: not yet since the change). Every process routes by this table,
-- read again every maintenance period.
CREATE TABLE IF NOT EXISTS dedicated_tenants (
    tenant      text PRIMARY KEY,
    dedicated   boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    rerouted_at timestamptz
);

-- No index for the leader's re-route after a change (it clears
-- `published_at` of one tenant's queued rows, once per change): it reads the
-- queued rows through 0008's partial index, and an index of its own would
-- cost every submission and claim a write for a statement run once per
-- operator change.
