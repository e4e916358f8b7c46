// A local stand-in for the gateway, for the tests of how the SDK handles its
// answers (parsing, retries). The SDK against a real gateway is sdk.test.ts.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A task document as `GET /tasks/{id}` answers it, with `fields` replaced. */
export function stubTask(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: "t-1",
    task: "add",
    args: [1, 2],
    kwargs: {},
    queue: "default",
    status: "queued",
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
    ...fields,
  };
}

/** Listens on 127.0.0.1:`port` (0: a free port); resolves to the port taken. */
export async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** Stops `server` and resolves once it is closed. */
export function close(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}
