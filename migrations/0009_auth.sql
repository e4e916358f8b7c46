-- Authentication and tenants (docs/security.md).
--
-- A task belongs to one tenant. A tenant's client-chosen ids are its own:
-- the row's `id` (the key every internal path uses: Kafka record keys,
-- NOTIFY payloads, attempt rows, the worker's cancel registry) is the client
-- id for the `default` tenant, which keeps every id stored before tenants
-- existed, and `<tenant>/<client id>` for any other (client ids cannot
-- contain '/', so the two forms never meet).
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';

-- API keys. Only a SHA-256 of the token is kept (tokens are 256 random bits,
-- so a fast hash is enough); `token_prefix` is its first characters, shown in
-- listings so people can tell keys apart. `queues` NULL: every queue.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant       text NOT NULL,
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    scopes       text[] NOT NULL,
    queues       text[],
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Who did what to keys and other admin state: append-only.
CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    tenant text,
    target text,
    detail jsonb NOT NULL DEFAULT '{}'
);
