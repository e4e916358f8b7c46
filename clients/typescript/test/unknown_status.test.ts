// A status this SDK does not know (a newer gateway's, e.g. `waiting`, during
// a rolling upgrade) reads as a plain string and is never terminal. Against a
// local stub of the gateway: what is tested is the handling of its answers.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { TERMINAL, Yadtq, type Task, type TaskStatus } from "../src/index.js";

const task = (id: string, status: string): Record<string, unknown> => ({
  id,
  task: "add",
  args: [1, 2],
  kwargs: {},
  queue: "default",
  status,
  result: null,
  error: null,
  attempts: 0,
  max_retries: 3,
  timeout: 300,
  run_at: null,
  progress: null,
  cancel_requested_at: null,
  worker_id: null,
  created_at: "2025-01-01T00:00:00Z",
  started_at: null,
  finished_at: null,
  trace_id: null,
});

let server: Server;
let q: Yadtq;

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://stub").pathname;
    const body =
      path === "/tasks/t-1"
        ? task("t-1", "waiting")
        : path === "/tasks"
          ? { tasks: [task("t-1", "waiting"), task("t-2", "success")], next_cursor: null }
          : undefined;
    res.writeHead(body ? 200 : 404, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  q = new Yadtq(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { apiKey: "yadtq_stub" });
});

after(() => server.close());

test("an unknown status reads verbatim and is not terminal", async () => {
  const tasks: Task[] = [];
  for await (const t of q.iterTasks()) tasks.push(t);
  assert.deepEqual(
    tasks.map((t) => [t.id, t.status, TERMINAL.has(t.status)]),
    [
      ["t-1", "waiting", false],
      ["t-2", "success", true],
    ],
  );
  // The type keeps the known names and admits others (this compiles only then).
  const known: TaskStatus = "success";
  const newer: Task["status"] = "waiting";
  assert.equal(tasks[0]!.status, newer);
  assert.ok(TERMINAL.has(known) && !TERMINAL.has(newer));
});

test("waiting for a task in an unknown status keeps waiting", async () => {
  await assert.rejects(q.wait("t-1", 0.2), /still waiting/);
});
