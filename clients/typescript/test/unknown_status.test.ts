// A status this SDK does not know (a newer gateway's, e.g. `suspended`, during
// a rolling upgrade) reads as a plain string and is never terminal. Against a
// local stub of the gateway: what is tested is the handling of its answers.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, test } from "node:test";

import { TERMINAL, Yadtq, type Task, type TaskStatus } from "../src/index.js";
import { close, listen, stubTask } from "./stub_gateway.js";

let server: Server;
let q: Yadtq;

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://stub").pathname;
    const waiting = stubTask({ status: "suspended" });
    const body =
      path === "/tasks/t-1"
        ? waiting
        : path === "/tasks"
          ? { tasks: [waiting, stubTask({ id: "t-2", status: "success" })], next_cursor: null }
          : undefined;
    res.writeHead(body ? 200 : 404, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body ?? {}));
  });
  q = new Yadtq(`http://127.0.0.1:${await listen(server)}`, { apiKey: "yadtq_stub" });
});

after(() => close(server));

test("an unknown status reads verbatim and is not terminal", async () => {
  const tasks: Task[] = [];
  for await (const t of q.iterTasks()) tasks.push(t);
  assert.deepEqual(
    tasks.map((t) => [t.id, t.status, TERMINAL.has(t.status)]),
    [
      ["t-1", "suspended", false],
      ["t-2", "success", true],
    ],
  );
  // The type keeps the known names and admits others (this compiles only then).
  const known: TaskStatus = "success";
  const newer: Task["status"] = "suspended";
  assert.equal(tasks[0]!.status, newer);
  assert.ok(TERMINAL.has(known) && !TERMINAL.has(newer));
});

test("waiting for a task in an unknown status keeps waiting", async () => {
  await assert.rejects(q.wait("t-1", 0.2), /still suspended/);
});
