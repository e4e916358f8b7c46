// Unique tasks through the SDK (docs/unique.md): a repeat while the holder
// waits returns the holder, marked existing; once it is cancelled the key is
// free; a bad option is a problem naming its field.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { ProblemError, Yadtq, unwrap } from "../src/index.js";

const URL = process.env.YADTQ_URL ?? "http://127.0.0.1:8080";
const QUEUE = process.env.YADTQ_SDK_QUEUE ?? "sdk_ts";
const API_KEY = process.env.YADTQ_API_KEY;
if (!API_KEY) throw new Error(`set YADTQ_API_KEY to an admin key of the gateway at ${URL}`);
const q = new Yadtq(URL, { apiKey: API_KEY });

const cancel = (id: string) => unwrap(q.client.POST("/tasks/{id}/cancel", { params: { path: { id } } }));

test("a repeat returns the holder until it is cancelled", async () => {
  const key = `ts-unique-${randomUUID().slice(0, 12)}`;
  // Scheduled a minute ahead: it holds the key for the whole test.
  const body = (arg: number) => ({ task: "sleep", args: [arg], queue: QUEUE, countdown: 60, unique: { key } });
  const first = await q.submitUnique(body(0));
  assert.equal(first.existing, false);
  const again = await q.submitUnique(body(1));
  assert.deepEqual([again.existing, again.task.id, again.task.args], [true, first.task.id, [0]]);
  // The plain submit takes the option too.
  assert.equal((await q.submit(body(2))).id, first.task.id);

  assert.equal((await cancel(first.task.id)).status, "cancelled");
  const fresh = await q.submitUnique(body(0));
  assert.equal(fresh.existing, false);
  assert.notEqual(fresh.task.id, first.task.id);
  await cancel(fresh.task.id);
});

test("a bad unique option names its field", async () => {
  try {
    await q.submitUnique({ task: "sleep", args: [0], queue: QUEUE, unique: { for_seconds: 0 } });
    assert.fail("expected a problem");
  } catch (e) {
    assert.ok(e instanceof ProblemError, `expected a ProblemError, got ${e}`);
    assert.deepEqual([e.status, e.field], [400, "unique.for_seconds"]);
  }
});
