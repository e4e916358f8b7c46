// Limits through the TypeScript SDK against a live gateway and worker (as
// sdk.test.ts): a paused limit holds a task until it is deleted.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { ProblemError, Yadtq } from "../src/index.js";

const URL = process.env.YADTQ_URL ?? "http://127.0.0.1:8080";
const QUEUE = process.env.YADTQ_SDK_QUEUE ?? "sdk_ts";
const API_KEY = process.env.YADTQ_API_KEY;
if (!API_KEY) throw new Error(`set YADTQ_API_KEY to an admin key of the gateway at ${URL}`);
const q = new Yadtq(URL, { apiKey: API_KEY });

test("a paused limit holds a task until it is deleted", async () => {
  const name = `ts-${randomUUID().slice(0, 12)}`;
  const limit = await q.putLimit(name, { concurrency: 0, key: "/kwargs/customer" });
  assert.deepEqual([limit.name, limit.concurrency, limit.key], [name, 0, "/kwargs/customer"]);
  const names: string[] = [];
  for await (const l of q.iterLimits(2)) names.push(l.name);
  assert.ok(names.includes(name), `${names}`);
  await assert.rejects(q.putLimit(name, { concurrency: 1, key: "/kwargs/other" }), (e: unknown) => {
    assert.ok(e instanceof ProblemError);
    assert.deepEqual([e.status, e.field], [409, "key"]);
    return true;
  });

  const task = await q.submit({ task: "echo", args: ["hi"], kwargs: { customer: 7 }, queue: QUEUE, limits: [name] });
  assert.equal(task.status, "held");
  const detail = await q.getLimit(name);
  assert.deepEqual(
    detail.buckets.map((b) => [b.bucket, b.held]),
    [["7", 1]],
  );

  await q.deleteLimit(name);
  assert.deepEqual((await q.wait(task.id, 60)).result, ["hi"]);
  await assert.rejects(q.getLimit(name), (e: unknown) => e instanceof ProblemError && e.status === 404);
});
