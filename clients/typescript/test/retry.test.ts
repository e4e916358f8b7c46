// The retry rule (src/retry.ts), against a local stub gateway that answers
// from a script: idempotent calls are retried on 502, 503, 504, 429 (after
// Retry-After) and refused connections; `POST /tasks/{id}/retry` is not;
// every submit carries one Idempotency-Key, the same on each of its tries.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, beforeEach, test } from "node:test";

import { ProblemError, Yadtq, type RetryPolicy } from "../src/index.js";
import { close, listen, stubTask } from "./stub_gateway.js";

const task = stubTask();
const FAST: Partial<RetryPolicy> = { maxAttempts: 5, baseMs: 10, capMs: 50 };

// The answers to give, first to last (the last repeats), and the requests seen.
let script: [number, Record<string, string>][] = [];
let seen: { method: string; path: string; headers: IncomingHttpHeaders }[] = [];

function stub(): Server {
  return createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
      const [status, headers] = (script.length > 1 ? script.shift() : script[0]) ?? [200, {}];
      const body =
        status < 300
          ? JSON.stringify(task)
          : status === 502 || status === 504
            ? "<html><body><h1>502 Bad Gateway</h1></body></html>"
            : JSON.stringify({ type: "about:blank", title: "Error", status, detail: "stub" });
      const type = status < 300 ? "application/json" : status === 502 || status === 504 ? "text/html" : "application/problem+json";
      res.writeHead(status, { "Content-Type": type, ...headers }).end(body);
    });
  });
}

let server: Server;
let url: string;
before(async () => {
  server = stub();
  url = `http://127.0.0.1:${await listen(server)}`;
});
after(() => close(server));
beforeEach(() => {
  seen = [];
});

for (const status of [502, 503, 504]) {
  test(`reads are retried on ${status}`, async () => {
    script = [[status, {}], [status, {}], [200, {}]];
    const q = new Yadtq(url, { apiKey: "k", retry: FAST });
    const { data } = await q.client.GET("/tasks/{id}", { params: { path: { id: "t-1" } } });
    assert.equal(data?.id, "t-1");
    assert.equal(seen.length, 3);
    assert.ok(seen.every((r) => r.headers.authorization === "Bearer k"));
  });
}

test("retries give up after maxAttempts", async () => {
  script = [[502, {}]];
  const q = new Yadtq(url, { retry: { maxAttempts: 3, baseMs: 1, capMs: 1 } });
  const { response } = await q.client.GET("/tasks/{id}", { params: { path: { id: "t-1" } } });
  assert.equal(response.status, 502);
  assert.equal(seen.length, 3);
});

test("a submit carries one Idempotency-Key and is retried", async () => {
  script = [[502, {}], [503, { "Retry-After": "0" }], [202, {}]];
  const q = new Yadtq(url, { retry: FAST });
  await q.submit({ task: "add", args: [1, 2] });
  const keys = new Set(seen.map((r) => r.headers["idempotency-key"]));
  assert.equal(seen.length, 3);
  assert.equal(keys.size, 1);
  assert.ok(!keys.has(undefined));
  script = [[202, {}]];
  await q.submit({ task: "add", args: [1, 2] });
  assert.ok(!keys.has(seen.at(-1)?.headers["idempotency-key"]), "each submit has a key of its own");
});

test("a submit with an id carries no key and is retried", async () => {
  script = [[502, {}], [202, {}]];
  await new Yadtq(url, { retry: FAST }).submit({ task: "add", args: [1, 2], id: "mine" });
  assert.equal(seen.length, 2);
  assert.ok(seen.every((r) => r.headers["idempotency-key"] === undefined));
});

test("a batch carries an Idempotency-Key and is retried", async () => {
  script = [[504, {}], [200, {}]];
  const q = new Yadtq(url, { retry: FAST });
  const { response } = await q.client.POST("/tasks/batch", { body: { tasks: [{ task: "add", args: [1, 2] }] } });
  assert.equal(response.status, 200);
  assert.equal(seen.length, 2);
  assert.ok(seen[0]?.headers["idempotency-key"]);
  assert.equal(seen[0]?.headers["idempotency-key"], seen[1]?.headers["idempotency-key"]);
});

test("retry of a task is never repeated", async () => {
  script = [[502, {}], [200, {}]];
  const q = new Yadtq(url, { retry: FAST });
  const { response } = await q.client.POST("/tasks/{id}/retry", { params: { path: { id: "t-1" } } });
  assert.equal(response.status, 502);
  assert.equal(seen.length, 1);
});

test("cancel is retried", async () => {
  script = [[503, {}], [200, {}]];
  const q = new Yadtq(url, { retry: FAST });
  const { response } = await q.client.POST("/tasks/{id}/cancel", { params: { path: { id: "t-1" } } });
  assert.equal(response.status, 200);
  assert.equal(seen.length, 2);
});

test("429 waits for Retry-After", async () => {
  script = [[429, { "Retry-After": "1" }], [200, {}]];
  const q = new Yadtq(url, { retry: FAST });
  const t0 = Date.now();
  const { data } = await q.client.GET("/tasks/{id}", { params: { path: { id: "t-1" } } });
  assert.equal(data?.id, "t-1");
  assert.ok(Date.now() - t0 >= 950, `${Date.now() - t0} ms`);
  assert.equal(seen.length, 2);
});

test("problems that are not transient are not retried", async () => {
  script = [[409, {}], [200, {}]];
  const q = new Yadtq(url, { retry: FAST });
  await assert.rejects(q.submit({ task: "add", args: [1, 2], id: "taken" }), ProblemError);
  assert.equal(seen.length, 1);
});

test("a refused connection is retried until the gateway is up", async () => {
  const late = stub();
  const port = await listen(late);
  await close(late);
  setTimeout(() => late.listen(port, "127.0.0.1"), 300);
  try {
    script = [[202, {}]];
    const q = new Yadtq(`http://127.0.0.1:${port}`, { retry: { maxAttempts: 30, baseMs: 50, capMs: 100 } });
    assert.equal((await q.submit({ task: "add", args: [1, 2] })).id, "t-1");
    assert.equal(seen.length, 1);
  } finally {
    await close(late);
  }
});

test("a refused connection gives up after maxAttempts", async () => {
  const gone = createServer();
  const port = await listen(gone);
  await close(gone);
  const q = new Yadtq(`http://127.0.0.1:${port}`, { retry: { maxAttempts: 3, baseMs: 1, capMs: 1 } });
  await assert.rejects(q.client.GET("/tasks/{id}", { params: { path: { id: "t-1" } } }), TypeError);
});
