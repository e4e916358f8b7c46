// Workflows through the TypeScript SDK against a live gateway and worker (as
// sdk.test.ts): a diamond of the built-in handlers submitted, waited for as
// a workflow and as its tasks, and submitted again (the same workflow).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Yadtq, type WorkflowRequest } from "../src/index.js";

const URL = process.env.YADTQ_URL ?? "http://127.0.0.1:8080";
const QUEUE = process.env.YADTQ_SDK_QUEUE ?? "sdk_ts";
const API_KEY = process.env.YADTQ_API_KEY;
if (!API_KEY) throw new Error(`set YADTQ_API_KEY to an admin key of the gateway at ${URL}`);
const q = new Yadtq(URL, { apiKey: API_KEY });

test("a diamond runs its last node after both parents, with their results", async () => {
  const id = `ts-${randomUUID().slice(0, 12)}`;
  const body: WorkflowRequest = {
    id,
    tasks: [
      { ref: "a", task: "add", args: [1, 2], queue: QUEUE },
      { ref: "b", task: "sum", args: [10], queue: QUEUE, depends_on: ["a"] },
      { ref: "c", task: "sum", args: [20], queue: QUEUE, depends_on: ["a"] },
      { ref: "d", task: "collect", queue: QUEUE, depends_on: ["b", "c"] },
    ],
  };
  const wf = await q.submitWorkflow(body);
  assert.deepEqual(
    wf.nodes.map((n) => n.id),
    ["a", "b", "c", "d"].map((r) => `wf:${id}:${r}`),
  );
  const tasks = await q.waitTasks(wf.nodes.map((n) => n.id), "all", 120);
  assert.deepEqual(
    tasks.slice(0, 3).map((t) => t.result),
    [3, 13, 23],
  );
  assert.deepEqual((tasks[3]?.result as { parents: unknown }).parents, { b: 13, c: 23 });
  const done = await q.waitWorkflow(id, 120);
  assert.equal(done.status, "success");
  assert.deepEqual(done.counts, { success: 4 });
  assert.equal((await q.submitWorkflow(body)).id, id);
});
