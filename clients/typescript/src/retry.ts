// Retries of idempotent calls, and the Idempotency-Key that makes a submit one.
//
// A gateway behind a load balancer can die with a request in flight: the
// balancer then answers 502 (nginx's HTML "Bad Gateway"), and a gateway that
// cannot reach PostgreSQL answers 503. Neither says whether the request took
// effect, so only a request that is safe to repeat is sent again:
//   - every GET (reads, long-polls, listings, the event stream's opening);
//   - `POST /tasks` and `POST /tasks/batch` carrying a task `id` or an
//     `Idempotency-Key` header, which every submit does: a fresh key (a UUID)
//     is added to a submit without either, once per call, so its retries carry
//     the same key and the gateway answers a repeat 200 with the task it has
//     (a batch's task `i` without an id gets the id `K.i`);
//   - `POST /tasks/{id}/cancel`.
// Never `POST /tasks/{id}/retry` (a repeat could run the task again), nor the
// admin operations. Retried: connection failures (refused, reset, closed
// before an answer) and 502, 503, 504, and 429, after the answer's
// `Retry-After` when it has one (503 too), else after a capped exponential
// backoff with full jitter.

/** How often and how long an idempotent call is retried. */
export interface RetryPolicy {
  /** Tries in all, the first included (1: never retry). Default 5. */
  maxAttempts: number;
  /** Before retry n (1, 2, ...) the client sleeps a random time between 0
   * and min(capMs, baseMs * 2^(n-1)) ms (full jitter), or the answer's
   * Retry-After. Default 200. */
  baseMs: number;
  /** Default 5000. */
  capMs: number;
  /** A Retry-After above this is not waited for: the answer is returned. Default 60000. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = { maxAttempts: 5, baseMs: 200, capMs: 5000, maxRetryAfterMs: 60000 };
/** No retries: `new Yadtq(url, { retry: NO_RETRY })`. */
export const NO_RETRY: Readonly<Partial<RetryPolicy>> = { maxAttempts: 1 };

/** Answers retried on an idempotent call. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

const SUBMIT = /\/tasks(\/batch)?\/?$/;
const CANCEL = /\/tasks\/[^/]+\/cancel\/?$/;

function namesItsId(body: string | undefined): boolean {
  try {
    const doc: unknown = JSON.parse(body ?? "null");
    if (typeof doc !== "object" || doc === null) return false;
    const d = doc as Record<string, unknown>;
    return Boolean(d["id"] || d["task-id"]);
  } catch {
    return false;
  }
}

/** Gives a submit a fresh Idempotency-Key unless it has one or (single submit) names its id. */
function addIdempotencyKey(request: Request, path: string, body: string | undefined): void {
  if (request.method !== "POST" || request.headers.has("Idempotency-Key")) return;
  const m = SUBMIT.exec(path);
  if (m === null || (m[1] === undefined && namesItsId(body))) return;
  request.headers.set("Idempotency-Key", crypto.randomUUID());
}

/** True for a request that may be sent again (see the file's head). */
export function isIdempotent(method: string, path: string, headers: Headers, body?: string): boolean {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return true;
  if (method !== "POST") return false;
  if (CANCEL.test(path)) return true;
  const m = SUBMIT.exec(path);
  if (m === null) return false;
  return headers.has("Idempotency-Key") || (m[1] === undefined && namesItsId(body));
}

/** The answer's Retry-After in ms (delta-seconds or an HTTP date). */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("Retry-After")?.trim();
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, when - Date.now());
}

/** A transport failure worth retrying: fetch's TypeError ("fetch failed":
 * refused, reset, closed), not an abort nor undici's read timeouts. */
function isConnectionFailure(e: unknown): boolean {
  if (!(e instanceof TypeError)) return false;
  const code = (e.cause as { code?: string } | undefined)?.code;
  return code !== "UND_ERR_HEADERS_TIMEOUT" && code !== "UND_ERR_BODY_TIMEOUT";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A fetch for openapi-fetch that keys submits and retries idempotent calls. */
export function retryingFetch(
  policy: Partial<RetryPolicy> = {},
  inner: (input: Request, init?: RequestInit) => Promise<Response> = globalThis.fetch,
): (input: Request, init?: RequestInit) => Promise<Response> {
  const p: RetryPolicy = { ...DEFAULT_RETRY, ...policy };
  const backoff = (retry: number) => Math.random() * Math.min(p.capMs, p.baseMs * 2 ** (retry - 1));
  return async (request: Request, init?: RequestInit): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const body = request.method === "POST" ? await request.clone().text() : undefined;
    addIdempotencyKey(request, path, body);
    if (!isIdempotent(request.method, path, request.headers, body)) return inner(request, init);
    for (let retry = 1; ; retry++) {
      let delay: number;
      try {
        const response = await inner(request.clone(), init);
        if (!RETRY_STATUSES.has(response.status) || retry >= p.maxAttempts) return response;
        const after = retryAfterMs(response);
        if (after !== undefined && after > p.maxRetryAfterMs) return response;
        delay = after ?? backoff(retry);
        await response.body?.cancel();
      } catch (e) {
        if (!isConnectionFailure(e) || retry >= p.maxAttempts || request.signal.aborted) throw e;
        delay = backoff(retry);
      }
      await sleep(delay);
    }
  };
}
