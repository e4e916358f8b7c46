// The TypeScript SDK against a live gateway and worker (YADTQ_URL; the worker
// serves the queue YADTQ_SDK_QUEUE, default `sdk_ts`; YADTQ_API_KEY is an
// admin key of it): the generated client (`q.client.GET(...)`, openapi-fetch
// over schema.ts) and the layer on top.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { ProblemError, Yadtq, unwrap, type SubmitRequest, type Task, type TaskStatus } from "../src/index.js";

const URL = process.env.YADTQ_URL ?? "http://127.0.0.1:8080";
const QUEUE = process.env.YADTQ_SDK_QUEUE ?? "sdk_ts";
const API_KEY = process.env.YADTQ_API_KEY;
if (!API_KEY) throw new Error(`set YADTQ_API_KEY to an admin key of the gateway at ${URL}`);
const q = new Yadtq(URL, { apiKey: API_KEY });
const run = randomUUID().slice(0, 12);
/** A fresh client-chosen task id, unique across runs against one gateway. */
const newId = (name: string) => `ts-${run}-${name}`;
const job = (task: string, args: unknown[], more: Partial<SubmitRequest> = {}): SubmitRequest => ({
  task,
  args,
  queue: QUEUE,
  ...more,
});

/** The ProblemError `call` rejects with. */
async function problemOf(call: () => Promise<unknown>): Promise<ProblemError> {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof ProblemError, `expected a ProblemError, got ${e}`);
    return e;
  }
  assert.fail("expected a problem, got a success");
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

test("a request without a key is 401, and a read-only key may not submit", async () => {
  const anonymous = await problemOf(() => new Yadtq(URL).submit(job("multiply", [4, 5])));
  assert.deepEqual([anonymous.status, anonymous.field], [401, "Authorization"]);

  const created = await q.client.POST("/admin/keys", { body: { scopes: ["read"], name: "sdk_ts read-only" } });
  assert.equal(created.response.status, 201);
  const { key, token } = created.data!;
  assert.deepEqual(key.scopes, ["read"]);
  assert.ok(token.startsWith(key.token_prefix));
  const reader = new Yadtq(URL, { apiKey: token });
  const refused = await problemOf(() => reader.submit(job("multiply", [4, 5])));
  assert.deepEqual([refused.status, refused.field], [403, "Authorization"]);
  assert.match(refused.problem.detail, /submit/);
  // What it may do, it does: read the admin's task.
  const task = await q.submit(job("multiply", [4, 5]));
  assert.equal((await reader.wait(task.id, 30)).id, task.id);
});

test("multiply(4, 5) = 20 through the generated client", async () => {
  const submitted = await q.client.POST("/tasks", { body: job("multiply", [4, 5]) });
  assert.equal(submitted.response.status, 202);
  const id = submitted.data!.id;
  assert.equal(submitted.response.headers.get("location"), `/tasks/${id}`);
  const now = await unwrap(q.client.GET("/tasks/{id}", { params: { path: { id } } }));
  assert.ok(["queued", "processing", "success"].includes(now.status)); // read your write
  const done = await unwrap(q.client.GET("/tasks/{id}", { params: { path: { id }, query: { wait: 30 } } }));
  assert.deepEqual([done.status, done.result, done.attempts], ["success", 20, 1]);
});

test("long-poll answers at the outcome or at the deadline", async () => {
  const { id } = await q.submit(job("sleep", [1.5]));
  const started = performance.now();
  const early = await unwrap(q.client.GET("/tasks/{id}", { params: { path: { id }, query: { wait: 0.3 } } }));
  const elapsed = (performance.now() - started) / 1000;
  assert.ok(["queued", "processing"].includes(early.status));
  assert.ok(elapsed >= 0.3 && elapsed < 1.5, `answered after ${elapsed} s`);
  const done = await unwrap(q.client.GET("/tasks/{id}", { params: { path: { id }, query: { wait: 30 } } }));
  assert.deepEqual([done.status, done.result], ["success", 1.5]);
  assert.ok(performance.now() - started < 10_000); // at the outcome, not at the 30 s deadline
});

test("submitAndWait", async () => {
  const task = await q.submitAndWait(job("add", [1, 2]), 30);
  assert.deepEqual([task.status, task.result], ["success", 3]);
});

test("listing with filters and cursor pagination", async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await q.submit(job("echo", [i], { id: newId(`list-${i}`) }))).id);
  for (const id of ids) await q.wait(id, 30);
  const page = (cursor?: string) =>
    unwrap(q.client.GET("/tasks", { params: { query: { queue: QUEUE, task: "echo", limit: 2, cursor } } }));
  const first = await page();
  assert.equal(first.tasks.length, 2);
  assert.ok(first.next_cursor);
  const second = await page(first.next_cursor);
  assert.ok(second.tasks.every((t) => !first.tasks.some((f) => f.id === t.id)));
  // Newest first over every page: the last five submitted come back in reverse.
  const listed = await collect(q.iterTasks({ queue: QUEUE, task: "echo", status: "success" }, 2));
  assert.deepEqual(listed.map((t) => t.id).filter((id) => ids.includes(id)), [...ids].reverse());
  assert.ok(listed.every((t) => t.queue === QUEUE && t.task === "echo"));
  const worker = (await q.wait(ids[0]!, 1)).worker_id!;
  assert.ok((await collect(q.iterTasks({ worker, queue: QUEUE }, 500))).some((t) => t.id === ids[0]));
  const failed = await collect(q.iterTasks({ queue: QUEUE, task: "echo", status: "failed" }));
  assert.ok(!failed.some((t) => ids.includes(t.id)));
  const bad = await problemOf(() => unwrap(q.client.GET("/tasks", { params: { query: { limit: 0 } } })));
  assert.deepEqual([bad.status, bad.field], [400, "limit"]);
});

test("workers with alive", async () => {
  const alive = (await unwrap(q.client.GET("/workers", { params: { query: { alive: true } } }))).workers;
  const ours = alive.filter((w) => w.queues.includes(QUEUE));
  assert.ok(ours.length > 0 && alive.every((w) => w.alive));
  assert.ok(ours[0]!.task_names.includes("multiply") && ours[0]!.ready);
  const gone = await unwrap(q.client.GET("/workers", { params: { query: { alive: false, limit: 500 } } }));
  assert.ok(!gone.workers.some((w) => w.alive));
  const one = await unwrap(q.client.GET("/workers", { params: { query: { alive: true, limit: 1 } } }));
  assert.equal(one.workers.length, 1);
});

test("batch: all or nothing, idempotent", async () => {
  const tasks = [
    job("add", [1, 2], { id: newId("b-add") }),
    job("sub", [10, 4], { id: newId("b-sub") }),
    job("multiply", [4, 5], { id: newId("b-mul") }),
  ];
  const created = await q.client.POST("/tasks/batch", { body: { tasks } });
  assert.equal(created.response.status, 202);
  assert.deepEqual(created.data!.tasks.map((t) => t.id), tasks.map((t) => t.id));
  const results = await Promise.all(created.data!.tasks.map(async (t) => (await q.wait(t.id, 30)).result));
  assert.deepEqual(results, [3, 6, 20]);
  const again = await q.client.POST("/tasks/batch", { body: { tasks } });
  assert.equal(again.response.status, 200);
  assert.deepEqual(again.data!.tasks.map((t) => t.result), [3, 6, 20]);

  const bad = [job("add", [1, 1], { id: newId("b-never") }), { task: "add", args: [1], queue: "nope" }];
  const refused = await problemOf(() => unwrap(q.client.POST("/tasks/batch", { body: { tasks: bad } })));
  assert.deepEqual([refused.status, refused.field], [422, "tasks[1].queue"]);
  const never = await q.client.GET("/tasks/{id}", { params: { path: { id: newId("b-never") } } });
  assert.equal(never.response.status, 404); // nothing stored
});

test("cancel a scheduled task, then retry it", async () => {
  const task = await q.submit(job("add", [2, 2], { countdown: 600 }));
  assert.equal(task.status, "scheduled");
  const path = { params: { path: { id: task.id } } };
  const cancelled = await q.client.POST("/tasks/{id}/cancel", path);
  assert.deepEqual([cancelled.response.status, cancelled.data?.status], [200, "cancelled"]);
  const again = await q.client.POST("/tasks/{id}/cancel", path); // a repeat is no error
  assert.deepEqual([again.response.status, again.data?.status], [200, "cancelled"]);
  const retried = await q.client.POST("/tasks/{id}/retry", path);
  assert.deepEqual([retried.response.status, retried.data?.status], [202, "queued"]);
  assert.equal((await q.wait(task.id, 30)).result, 4);
  assert.equal((await problemOf(() => unwrap(q.client.POST("/tasks/{id}/retry", path)))).status, 409);
});

test("cancel a running task", async () => {
  const task = await q.submit(job("sleep", [30]));
  for await (const event of q.events(task.id)) if (event.task.status === "processing") break;
  const path = { params: { path: { id: task.id } } };
  const requested = await q.client.POST("/tasks/{id}/cancel", path);
  assert.equal(requested.response.status, 202);
  assert.ok(requested.data?.cancel_requested_at);
  assert.equal((await q.wait(task.id, 20)).status, "cancelled");
  const attempts = await unwrap(q.client.GET("/tasks/{id}/attempts", path));
  assert.deepEqual(attempts.map((a) => a.outcome), ["cancelled"]);
});

test("attempts of a failing task and its retry", async () => {
  const task = await q.submitAndWait(job("fail", ["boom"], { max_retries: 1, retry_backoff_base: 0.1 }), 30);
  assert.deepEqual([task.status, task.attempts, task.error?.message], ["failed", 2, "boom"]);
  const path = { params: { path: { id: task.id } } };
  const attempts = await unwrap(q.client.GET("/tasks/{id}/attempts", path));
  assert.deepEqual(
    attempts.map((a) => [a.attempt, a.outcome, a.error?.message]),
    [[1, "failed", "boom"], [2, "failed", "boom"]],
  );
  assert.equal((await unwrap(q.client.POST("/tasks/{id}/retry", path))).status, "queued");
  assert.equal((await q.wait(task.id, 30)).attempts, 3);

  const flaky = await q.submitAndWait(job("flaky", [2], { retry_backoff_base: 0.1 }), 30);
  assert.deepEqual([flaky.status, flaky.result, flaky.attempts], ["success", 2, 2]);
});

test("the event stream follows status and progress to the end", async () => {
  const task = await q.submit(job("sleep", [2.5]));
  const events = await collect(q.events(task.id));
  const last = events[events.length - 1]!;
  assert.equal(events[0]!.kind, "status");
  assert.deepEqual([last.kind, last.task.status, last.task.result], ["status", "success", 2.5]);
  const order: (TaskStatus | string)[] = ["queued", "processing", "success"];
  const statuses = events.filter((e) => e.kind === "status").map((e) => e.task.status);
  assert.deepEqual(statuses, [...new Set(statuses)].sort((a, b) => order.indexOf(a) - order.indexOf(b)));
  const progress = events.filter((e) => e.kind === "progress").map((e) => e.task.progress!.percent);
  assert.ok(progress.length > 0 && progress.every((p) => p > 0 && p < 100));
  // A finished task's stream is its terminal state alone.
  const replay = await collect(q.events(task.id));
  assert.deepEqual(replay.map((e) => [e.kind, e.task.status]), [["status", "success"]]);
});

test("errors surface as typed problems", async () => {
  const missing = await q.client.GET("/tasks/{id}", { params: { path: { id: newId("never") } } });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error?.status, 404); // typed as Problem
  assert.equal((await problemOf(() => q.wait(newId("never")))).status, 404);
  assert.equal((await problemOf(() => collect(q.events(newId("never"))))).status, 404);

  const first: Task = await q.submit(job("multiply", [4, 5], { id: newId("dup") }));
  const repeat = await q.client.POST("/tasks", { body: job("multiply", [4, 5], { id: first.id }) });
  assert.deepEqual([repeat.response.status, repeat.data?.id], [200, first.id]);
  const conflict = await problemOf(() => q.submit(job("multiply", [4, 6], { id: first.id })));
  assert.deepEqual([conflict.status, conflict.field], [409, "id"]);
  const key = newId("key");
  const keyed = [];
  for (let i = 0; i < 2; i++) {
    const { data, response } = await q.client.POST("/tasks", {
      body: job("add", [1, 2]),
      params: { header: { "Idempotency-Key": key } },
    });
    keyed.push([response.status, data?.id]);
  }
  assert.deepEqual(keyed, [[202, key], [200, key]]);

  const tooLarge = await problemOf(() => q.submit(job("echo", ["x".repeat(2 << 20)])));
  assert.deepEqual([tooLarge.status, tooLarge.field], [413, "body"]);
  assert.match(tooLarge.problem.detail, /limit/);

  // The next request works: the 413 closed its connection, and said so.
  const unknownQueue = await problemOf(() => q.submit(job("multiply", [4, 5], { queue: "no-such-queue" })));
  assert.deepEqual([unknownQueue.status, unknownQueue.field], [422, "queue"]);
});

test("a schedule fires its task, and its tasks list by schedule", async () => {
  const id = newId("every-second");
  const created = await q.createSchedule({ id, spec: { every: 1 }, overlap: "allow_all", task: job("echo", ["tick"]) });
  assert.equal(created.next_fire_times.length, 5);
  assert.ok((await collect(q.iterSchedules())).some((s) => s.id === id));
  const deadline = Date.now() + 30_000;
  let fired: Task[] = [];
  while (fired.length < 2) {
    assert.ok(Date.now() < deadline, "the schedule fired fewer than 2 tasks in 30 s");
    fired = await collect(q.iterTasks({ schedule: id }));
    await new Promise((r) => setTimeout(r, 200));
  }
  const last = fired.at(-1);
  assert.ok(last);
  const done = await q.wait(last.id, 30);
  assert.equal(done.status, "success");
  assert.equal(done.schedule_id, id);
  assert.ok(done.id.endsWith(`:${Date.parse(done.scheduled_for ?? "") / 1000}`), done.id);
  const bad = await problemOf(() => q.createSchedule({ id: newId("bad"), spec: { cron: "61 * * * *" }, task: job("echo", []) }));
  assert.equal(bad.problem.field, "spec.cron");
  const deleted = await q.client.DELETE("/schedules/{id}", { params: { path: { id } } });
  assert.equal(deleted.response.status, 204);
});
