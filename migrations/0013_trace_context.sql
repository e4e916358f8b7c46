-- The W3C trace context a task was submitted under (docs/operations.md,
-- "Traces"): the gateway's `submit` span as `traceparent`
-- (00-<trace id>-<span id>-<flags>) and the submitter's `tracestate`. The
-- worker continues it from the row, so a retried, rescued or re-sent task
-- stays in its trace. Nullable and additive: rows of an earlier release, or
-- of a gateway of one, have none.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS traceparent text,
                  ADD COLUMN IF NOT EXISTS tracestate text;
