// A thin, hand-written layer over the generated types (./schema.ts, made by
// scripts/gen-clients.sh) and openapi-fetch, which makes the requests.
// `Yadtq.client` is the typed openapi-fetch client: `client.GET("/tasks/{id}",
// ...)` returns `{ data, error, response }` for any documented answer, a
// problem document included; given an API key, it sends it on every request.
// This layer adds what it leaves to the caller:
//   - unwrap: the data of a success, or a thrown ProblemError (carrying the Problem);
//   - submitAndWait / wait: long-poll `GET /tasks/{id}?wait=` until terminal;
//   - iterTasks: every task of a `GET /tasks` listing, following `next_cursor`;
//   - submitUnique: a submission with a unique key (docs/unique.md), telling a
//     new task from the existing holder of the key;
//   - events: the server-sent events of `GET /tasks/{id}/events` as TaskEvents;
//   - createSchedule / iterSchedules: periodic tasks (docs/schedules.md); a
//     schedule's tasks are `iterTasks({ schedule: id })`;
//   - putLimit / getLimit / iterLimits / deleteLimit: limits (docs/limits.md);
//     a task takes them with `submit({ ..., limits: [...] })` and waits
//     `held` until they have room;
//   - submitWorkflow / waitWorkflow (long-polls `GET /workflows/{id}?wait=`)
//     and waitTasks (one `POST /tasks/wait` per 1,000 tasks): workflows
//     (docs/workflows.md);
//   - retries (./retry.ts): every submit carries an Idempotency-Key (unless it
//     names its task id), and idempotent calls (reads, keyed submits, cancel;
//     never retry) are retried on connection failures, 502, 503, 504 and 429
//     (after Retry-After) with capped exponential backoff and jitter, for
//     every call through `client`.
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import { retryingFetch, type RetryPolicy } from "./retry.js";
import type { components, operations, paths } from "./schema.js";

type Schemas = components["schemas"];
export type Task = Schemas["Task"];
export type TaskStatus = Schemas["TaskStatus"];
export type SubmitRequest = Schemas["SubmitRequest"];
export type UniqueRequest = Schemas["UniqueRequest"];
export type Problem = Schemas["Problem"];
export type Schedule = Schemas["Schedule"];
export type CreateSchedule = Schemas["CreateSchedule"];
export type Limit = Schemas["Limit"];
export type LimitDetail = Schemas["LimitDetail"];
export type PutLimit = Schemas["PutLimit"];
export type Workflow = Schemas["Workflow"];
export type WorkflowRequest = Schemas["WorkflowRequest"];
export type WaitUntil = Schemas["Until"];
export type ListFilters = Omit<NonNullable<operations["listTasks"]["parameters"]["query"]>, "limit" | "cursor">;
export type YadtqClient = Client<paths>;

/** Options of a Yadtq: openapi-fetch's (`fetch`, `headers`, ...) and the API key. */
export interface YadtqOptions extends Omit<ClientOptions, "baseUrl"> {
  /** The token of an API key (`yadtq-gateway keys create`, or `POST /admin/keys`),
   * sent as `Authorization: Bearer <key>` on every request that carries no
   * Authorization header of its own. Without a valid one the gateway answers
   * 401 (unless it runs with `--auth off`), and 403 when the key lacks the
   * scope an operation needs: both are problem documents. */
  apiKey?: string;
  /** Retries of idempotent calls (./retry.ts): any of `maxAttempts` (5),
   * `baseMs` (200), `capMs` (5000), `maxRetryAfterMs` (60000); `NO_RETRY`
   * turns them off (submits carry an Idempotency-Key either way). */
  retry?: Partial<RetryPolicy>;
}

/** Statuses a task never leaves (but for an explicit retry). A task's
 * `status` is a `TaskStatus`, or another string for a status this SDK does
 * not know (a newer gateway's), which is never terminal:
 * `TERMINAL.has(task.status)` is the test. */
export const TERMINAL: ReadonlySet<string> = new Set<TaskStatus>(["success", "failed", "cancelled"]);
/** The gateway's longest long-poll, seconds. */
export const MAX_WAIT = 60;
/** Most task ids one `POST /tasks/wait` takes. */
export const MAX_WAIT_IDS = 1000;

/** The gateway answered with an RFC 9457 problem document. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = "ProblemError";
  }
  get status(): number {
    return this.problem.status;
  }
  /** The request field at fault (`queue`, `id`, `tasks[3].args`, ...), if any. */
  get field(): string | undefined {
    return this.problem.field ?? undefined;
  }
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "status" in value && "title" in value && "detail" in value;
}

type Answer = { data?: unknown; error?: unknown; response: Response };

/** The data of an openapi-fetch call's success; a ProblemError otherwise. */
export async function unwrap<A extends Answer>(call: Promise<A>): Promise<NonNullable<A["data"]>> {
  const { data, error, response } = await call;
  if (isProblem(error)) throw new ProblemError(error);
  if (!response.ok || data === undefined) {
    throw new Error(`${response.status} ${response.statusText}: ${JSON.stringify(error)}`);
  }
  return data as NonNullable<A["data"]>;
}

/** One server-sent event: `kind` is `status` or `progress`; `task` the task then. */
export interface TaskEvent {
  kind: string;
  task: Task;
}

/** A yadtq gateway. */
export class Yadtq {
  readonly client: YadtqClient;

  constructor(baseUrl = "http://127.0.0.1:8080", { apiKey, retry, ...options }: YadtqOptions = {}) {
    const fetch = retryingFetch(retry, options.fetch ?? ((input: Request) => globalThis.fetch(input)));
    this.client = createClient<paths>({ baseUrl, ...options, fetch });
    if (apiKey !== undefined) {
      const authorization = `Bearer ${apiKey}`;
      this.client.use({
        onRequest({ request }) {
          if (!request.headers.has("Authorization")) request.headers.set("Authorization", authorization);
          return request;
        },
      });
    }
  }

  /** `POST /tasks`. */
  submit(body: SubmitRequest): Promise<Task> {
    return unwrap(this.client.POST("/tasks", { body }));
  }

  /** `POST /tasks` with `body.unique` (docs/unique.md: at most one live task
   * per key): the task, and `existing`, true when it is the task that
   * already held the key (header `Yadtq-Unique: existing`), nothing created. */
  async submitUnique(body: SubmitRequest & { unique: UniqueRequest }): Promise<{ task: Task; existing: boolean }> {
    const answer = await this.client.POST("/tasks", { body });
    const task = await unwrap(Promise.resolve(answer));
    return { task, existing: answer.response.headers.get("Yadtq-Unique") === "existing" };
  }

  /** The task once terminal, long-polling at most MAX_WAIT s a request;
   * rejects when it is not terminal within `timeoutS` seconds. */
  async wait(id: string, timeoutS = 300): Promise<Task> {
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      const wait = Math.max(0, Math.min(left, MAX_WAIT));
      const task = await unwrap(this.client.GET("/tasks/{id}", { params: { path: { id }, query: { wait } } }));
      if (TERMINAL.has(task.status)) return task;
      if (left <= 0) throw new Error(`task ${id} is still ${task.status} after ${timeoutS} s`);
    }
  }

  /** Submit, then `wait` for the outcome. */
  async submitAndWait(body: SubmitRequest, timeoutS = 300): Promise<Task> {
    return this.wait((await this.submit(body)).id, timeoutS);
  }

  /** Every task of `GET /tasks` matching `filters`, newest first, `pageSize` a page. */
  async *iterTasks(filters: ListFilters = {}, pageSize = 50): AsyncGenerator<Task> {
    let cursor: string | undefined;
    do {
      const query = { ...filters, limit: pageSize, cursor };
      const page = await unwrap(this.client.GET("/tasks", { params: { query } }));
      yield* page.tasks;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** `POST /schedules`: `body.spec` is `{ cron }` (5 or 6 fields, local to
   * `timezone`) or `{ every, offset? }` seconds; `body.task` a `POST /tasks`
   * body without an id or a start time. The same id and body again return
   * the schedule; another body rejects with a 409 ProblemError. */
  createSchedule(body: CreateSchedule): Promise<Schedule> {
    return unwrap(this.client.POST("/schedules", { body }));
  }

  /** Every schedule of `GET /schedules`, newest first, `pageSize` a page. */
  async *iterSchedules(pageSize = 50): AsyncGenerator<Schedule> {
    let cursor: string | undefined;
    do {
      const query = { limit: pageSize, cursor };
      const page = await unwrap(this.client.GET("/schedules", { params: { query } }));
      yield* page.schedules;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** `PUT /limits/{name}` (docs/limits.md): the whole limit, `concurrency`
   * (tasks of one bucket running at once; 0 pauses) and/or `rate`
   * (`{ count, per_seconds }`), `key` (a JSON pointer into `{ args, kwargs }`,
   * one bucket per value; it cannot change: 409), `tasks` (task names that
   * take the limit without naming it). */
  putLimit(name: string, body: PutLimit): Promise<Limit> {
    return unwrap(this.client.PUT("/limits/{name}", { params: { path: { name } }, body }));
  }

  /** `GET /limits/{name}`: the limit and a page of its buckets (running,
   * held, releases in the window); pass `next_cursor` as `cursor` for more. */
  getLimit(name: string, { pageSize = 50, cursor }: { pageSize?: number; cursor?: string } = {}): Promise<LimitDetail> {
    const query = { limit: pageSize, cursor };
    return unwrap(this.client.GET("/limits/{name}", { params: { path: { name }, query } }));
  }

  /** Every limit of `GET /limits`, by name, `pageSize` a page. */
  async *iterLimits(pageSize = 50): AsyncGenerator<Limit> {
    let cursor: string | undefined;
    do {
      const query = { limit: pageSize, cursor };
      const page = await unwrap(this.client.GET("/limits", { params: { query } }));
      yield* page.limits;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** `DELETE /limits/{name}`; the tasks it held are released. */
  async deleteLimit(name: string): Promise<void> {
    const { error, response } = await this.client.DELETE("/limits/{name}", { params: { path: { name } } });
    if (isProblem(error)) throw new ProblemError(error);
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  }

  /** `POST /workflows`: `body.tasks` are the nodes (`ref`, `task`, `args`,
   * `depends_on`, `on_parent_failure`, ...); `body.id` makes it idempotent
   * (the same id and nodes again return the workflow; other nodes reject
   * with a 409 ProblemError). Node `r`'s task id is `wf:<id>:<r>`. */
  submitWorkflow(body: WorkflowRequest): Promise<Workflow> {
    return unwrap(this.client.POST("/workflows", { body }));
  }

  /** The workflow once every node is terminal (`status` other than
   * `running`), long-polling; rejects when it is not within `timeoutS` seconds. */
  async waitWorkflow(id: string, timeoutS = 300): Promise<Workflow> {
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      const wait = Math.max(0, Math.min(left, MAX_WAIT));
      const wf = await unwrap(this.client.GET("/workflows/{id}", { params: { path: { id }, query: { wait } } }));
      if (wf.status !== "running") return wf;
      if (left <= 0) throw new Error(`workflow ${id} is still running after ${timeoutS} s`);
    }
  }

  /** The tasks `ids`, in the order given, once all of them (`until` "all")
   * or one of them ("any", at most MAX_WAIT_IDS ids) are terminal: one
   * `POST /tasks/wait` per MAX_WAIT_IDS ids at a time; rejects when the
   * condition does not hold within `timeoutS` seconds. */
  async waitTasks(ids: string[], until: WaitUntil = "all", timeoutS = 300): Promise<Task[]> {
    if (until === "any" && ids.length > MAX_WAIT_IDS) throw new Error(`until "any" takes at most ${MAX_WAIT_IDS} ids`);
    const deadline = Date.now() + timeoutS * 1000;
    const out: Task[] = [];
    for (let start = 0; start < ids.length; start += MAX_WAIT_IDS) {
      const chunk = ids.slice(start, start + MAX_WAIT_IDS);
      for (;;) {
        const left = (deadline - Date.now()) / 1000;
        const timeout = Math.max(0, Math.min(left, MAX_WAIT));
        const answer = await unwrap(this.client.POST("/tasks/wait", { body: { ids: chunk, until, timeout } }));
        if (answer.done) {
          out.push(...answer.tasks);
          break;
        }
        if (left <= 0) throw new Error(`tasks not ${until} terminal after ${timeoutS} s`);
      }
    }
    return out;
  }

  /** The task's server-sent events, the current state first, until the event
   * with a terminal status (then the stream ends). */
  async *events(id: string): AsyncGenerator<TaskEvent> {
    const stream = await unwrap(
      this.client.GET("/tasks/{id}/events", { params: { path: { id } }, parseAs: "stream" }),
    );
    let kind = "message";
    let data: string[] = [];
    for await (const line of lines(stream)) {
      if (line.startsWith(":")) continue; // keep-alive comment
      if (line !== "") {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "event") kind = value;
        else if (name === "data") data.push(value);
        continue;
      }
      if (data.length > 0) yield { kind, task: JSON.parse(data.join("\n")) as Task };
      kind = "message";
      data = [];
    }
  }
}

/** The lines of a UTF-8 byte stream (LF or CRLF). */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n")) >= 0) {
        yield buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
      }
      if (done) break;
    }
    if (buffer) yield buffer;
  } finally {
    await reader.cancel(); // a caller that stops early closes the connection
  }
}
