// The yadtq dashboard: plain JavaScript, no build step, no dependencies.
// Every figure comes from the gateway's API on this origin; the API key, when
// one is pasted, lives in sessionStorage (this tab only) and goes out as an
// `Authorization: Bearer` header on every request, the event stream included
// (read with fetch and a body reader, since EventSource cannot send headers).
// Nodes are built with createElement and textContent, never from markup, so
// nothing a task carries can run as script.
"use strict";

const KEY = "yadtq.apiKey";
const REFRESH_MS = 2000;
const STATUSES = ["waiting", "held", "queued", "scheduled", "processing", "success", "failed", "cancelled"];
const TERMINAL = new Set(["success", "failed", "cancelled"]);

// ---- small helpers -------------------------------------------------------

/** An element: h("td", {class: "num"}, "3", otherNode). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
}

function since(iso) {
  return iso ? (Date.now() - Date.parse(iso)) / 1000 : null;
}

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A status as a badge; one this page does not know (a newer gateway's, e.g.
 * `held`) as its text in the neutral style. */
function badge(status) {
  const known = STATUSES.includes(status) ? status : "other";
  return h("span", { class: `badge s-${known}`, "data-status": status }, status);
}

/** A queue's `other` counts (statuses this page does not know) as "held 1"; "–" when none. */
function fmtOther(other) {
  const parts = Object.entries(other || {}).map(([status, n]) => `${status} ${n}`);
  return parts.length ? parts.join(", ") : "–";
}

function taskLink(id) {
  return h("a", { href: `#/tasks/${encodeURIComponent(id)}`, class: "mono" }, id);
}

// ---- the API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Shows `text` in the banner (null hides it). */
function banner(text, kind) {
  const b = document.getElementById("banner");
  if (!text) {
    b.hidden = true;
    b.textContent = "";
    return;
  }
  b.hidden = false;
  b.className = kind || "error";
  b.textContent = text;
}

/** The scopes an API path needs, in words (the gateway's rules: docs/security.md). */
function needFor(path) {
  if (path.startsWith("/dead-letters")) return "admin (its own tenant's dead letters) or cluster (all)";
  if (path.startsWith("/admin")) return "admin (its own tenant) or cluster (every tenant)";
  if (path.startsWith("/queues") || /^\/tasks\/[^?]*\/(cancel|retry)/.test(path)) return "operate";
  if (path.startsWith("/schedules/")) return "operate";
  if (path.startsWith("/tasks") && !path.startsWith("/tasks?")) return path === "/tasks" ? "submit" : "read";
  return "read";
}

function authMessage(status, problem, path) {
  const detail = problem && problem.detail ? ` (${problem.detail})` : "";
  if (status === 401) {
    return sessionStorage.getItem(KEY)
      ? `The gateway refused this API key (401)${detail}. Paste a valid key above.`
      : `The gateway asks for an API key (401)${detail}. Paste one above.`;
  }
  return `This API key may not do that (403)${detail}. It needs the scope ${needFor(path)}.`;
}

async function problemOf(resp) {
  try {
    return await resp.json();
  } catch {
    return { detail: `HTTP ${resp.status}` };
  }
}

/** fetch on the API with the key; JSON answer, or ApiError (401/403 also shown in the banner). */
async function api(path, options) {
  const opts = options || {};
  const headers = Object.assign({ Accept: "application/json" }, authHeaders(), opts.headers || {});
  const resp = await fetch(path, Object.assign({}, opts, { headers }));
  if (resp.status === 401 || resp.status === 403) {
    const problem = await problemOf(resp);
    banner(authMessage(resp.status, problem, path), "auth");
    throw new ApiError(resp.status, problem);
  }
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  return resp.json();
}

// The key in use as GET /me describes it ({tenant, scopes, queues}), and the
// key it was read for: pages read, and offer, only what the key may (the API
// would refuse the rest with 403, and a refusal's banner would hide the page).
let knownMe = null;
let meKey = null;
const SCOPE_ORDER = ["submit", "read", "operate", "metrics", "admin", "cluster"];

/**
 * Resolves to GET /me of the key in use (no scopes when the key is refused);
 * rejects when the gateway cannot say now (a 503 is not remembered: the next
 * call asks again).
 */
async function keyInfo() {
  const key = sessionStorage.getItem(KEY) || "";
  if (knownMe !== null && meKey === key) return knownMe;
  let me;
  try {
    me = await api("/me");
  } catch (e) {
    if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) throw e;
    me = { tenant: null, scopes: [], queues: null, refused: true };
  }
  me.scopes = [...me.scopes].sort((a, b) => SCOPE_ORDER.indexOf(a) - SCOPE_ORDER.indexOf(b));
  knownMe = me;
  meKey = key;
  return me;
}

/** The scopes of the key in use ([] when it is refused). */
async function keyScopes() {
  return (await keyInfo()).scopes;
}

/**
 * GET /me for a page that polls: a refused key (401, shown in the banner)
 * rejects, so the page waits for a key rather than listing what it lacks.
 */
async function pageKey() {
  const me = await keyInfo();
  if (me.refused) throw new ApiError(401, { detail: "no usable API key" });
  return me;
}

/** The scopes as the pages name them: "submit, read" ("none" when empty). */
function scopeList(scopes) {
  return scopes.length ? scopes.join(", ") : "none";
}

/** Shows in the header what the key may see: its tenant, scopes and queues. */
async function showKeyScopes() {
  const el = document.getElementById("key-scopes");
  try {
    const me = await keyInfo();
    if (me.refused) {
      el.textContent = "";
      return;
    }
    const queues = me.queues ? ` · queues: ${me.queues.join(", ")}` : "";
    el.textContent = `tenant ${me.tenant} · scopes: ${scopeList(me.scopes)}${queues}`;
    el.title = "What this key may see and do (GET /me)";
  } catch {
    el.textContent = "";
  }
}

/** A note that a part of a page needs scopes the key lacks. */
function scopeNote(id, what, need, scopes) {
  return h("p", { id, class: "muted scope-note" }, `${what} need ${need}; this key has: ${scopeList(scopes)}.`);
}

/** True when `scopes` hold `scope` (cluster holds every scope, admin every one but cluster). */
function grants(scopes, scope) {
  return scopes.includes(scope) || scopes.includes("cluster") || (scope !== "cluster" && scopes.includes("admin"));
}

function post(path) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
}

/**
 * Reads a server-sent event stream with fetch (so the Bearer header goes
 * along). Calls onEvent(name, data) per event; resolves when the stream ends.
 */
async function streamEvents(path, signal, onEvent) {
  const resp = await fetch(path, { headers: Object.assign({ Accept: "text/event-stream" }, authHeaders()), signal });
  if (resp.status === 401 || resp.status === 403) {
    const problem = await problemOf(resp);
    banner(authMessage(resp.status, problem, path), "auth");
    throw new ApiError(resp.status, problem);
  }
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = val;
        else if (field === "data") data.push(val);
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// ---- views ---------------------------------------------------------------
// Each view renders into `root` and returns a function that stops its timers
// and streams when the user leaves it.

function errorNote(e) {
  return h("p", { class: "error-note" }, e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));
}

/** Re-runs `load` every REFRESH_MS until stopped; `load` replaces `root`'s content. */
function every(root, load) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      const nodes = await load();
      if (stopped) return;
      root.replaceChildren(...[nodes].flat(Infinity).filter((n) => n !== null && n !== undefined));
      document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
      if (!document.getElementById("banner").classList.contains("auth")) banner(null);
    } catch (e) {
      if (stopped) return;
      if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) {
        root.replaceChildren(errorNote(e));
      } else {
        root.replaceChildren(h("p", { class: "muted" }, "Waiting for a key that may read this page."));
      }
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function sparkline(minutes) {
  const width = 150;
  const height = 28;
  const max = Math.max(1, ...minutes.map((m) => m.success + m.failed + m.cancelled));
  const bar = width / Math.max(1, minutes.length);
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img" });
  minutes.forEach((m, i) => {
    let y = height;
    for (const [kind, n] of [["success", m.success], ["failed", m.failed], ["cancelled", m.cancelled]]) {
      if (!n) continue;
      const hgt = (n / max) * (height - 2);
      y -= hgt;
      const r = svg("rect", { x: i * bar + 0.5, y, width: Math.max(1, bar - 1), height: hgt, class: `bar-${kind}` });
      const title = svg("title", {});
      title.textContent = `${fmtTime(m.minute)}: ${n} ${kind}`;
      r.append(title);
      chart.append(r);
    }
  });
  return chart;
}

function overview(root) {
  return every(root, async () => {
    // Each part is read only with a key that may read it: workers need
    // read, the queues' figures operate, the dead letters admin or cluster.
    const { scopes } = await pageKey();
    const [queues, page] = await Promise.all([
      grants(scopes, "operate") ? api("/queues?minutes=15") : null,
      grants(scopes, "read") ? api("/workers?alive=true&limit=500") : null,
    ]);
    const workers = page ? page.workers : [];
    let dlq = null;
    if (grants(scopes, "admin")) {
      try {
        dlq = await api("/dead-letters?limit=1");
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) throw e;
      }
    }
    const ready = workers.filter((w) => w.ready).length;
    const inFlight = workers.reduce((n, w) => n + w.in_flight, 0);
    const slots = workers.reduce((n, w) => n + w.concurrency, 0);
    const cards = h(
      "div",
      { class: "cards" },
      page ? h("div", { class: "card" }, h("div", { class: "big", id: "workers-alive" }, workers.length), "workers alive") : null,
      page ? h("div", { class: "card" }, h("div", { class: "big" }, ready), "ready") : null,
      page ? h("div", { class: "card" }, h("div", { class: "big", id: "slots-busy" }, `${inFlight}/${slots}`), "slots busy") : null,
      dlq
        ? h("div", { class: "card" }, h("div", { class: "big" }, dlq.retained), h("a", { href: "#/dead-letters" }, "dead letters"))
        : null,
    );
    const notes = [
      page ? null : scopeNote("workers-note", "Workers", "the read scope", scopes),
      dlq || !grants(scopes, "read") ? null : scopeNote("dead-letters-count-note", "Dead letters", "admin (its own tenant's) or cluster (all)", scopes),
    ];
    if (!queues) {
      return [
        h("h2", {}, "Overview"),
        cards,
        notes,
        h("h3", {}, "Queues"),
        scopeNote("queues-note", "Queue figures (counts, throughput, failure rate, consumer lag)", "the operate scope", scopes),
      ];
    }
    const rows = queues.queues.map((q) =>
      h(
        "tr",
        { "data-queue": q.queue },
        h("td", {}, h("a", { href: `#/tasks?queue=${encodeURIComponent(q.queue)}` }, q.queue)),
        h("td", { class: "num", "data-count": "waiting", title: "workflow nodes waiting for their parents" }, q.waiting ?? 0),
        h("td", { class: "num", "data-count": "held", title: "tasks a limit holds back until it has room" }, q.held ?? 0),
        h("td", { class: "num", "data-count": "queued" }, q.queued),
        h("td", { class: "num", "data-count": "scheduled" }, q.scheduled),
        h("td", { class: "num", "data-count": "processing" }, q.processing),
        h("td", { class: "num", "data-count": "other", title: "statuses this release does not know" }, fmtOther(q.other)),
        h("td", { class: "num" }, fmtAge(q.oldest_queued_age_s)),
        h("td", { class: "num", "data-count": "success" }, q.finished.success),
        h("td", { class: "num", "data-count": "failed" }, q.finished.failed),
        h("td", { class: "num", "data-count": "cancelled" }, q.finished.cancelled),
        h("td", { class: "num" }, q.failure_rate === null ? "–" : `${(q.failure_rate * 100).toFixed(1)} %`),
        h("td", {}, sparkline(q.throughput)),
        h("td", { class: "num", "data-count": "lag" }, q.consumer_lag === null ? "?" : q.consumer_lag),
      ),
    );
    const table = h(
      "table",
      { id: "queues" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "Queue"),
          ["Waiting", "Held", "Queued", "Scheduled", "Processing", "Other", "Oldest queued"].map((t) => h("th", { class: "num" }, t)),
          ["Succeeded", "Failed", "Cancelled", "Failure rate"].map((t) => h("th", { class: "num", title: `last ${queues.minutes} min` }, t)),
          h("th", {}, `Finished per minute (${queues.minutes} min)`),
          h("th", { class: "num" }, "Consumer lag"),
        ),
      ),
      h("tbody", {}, rows),
    );
    const note = queues.kafka_error ? h("p", { class: "error-note" }, `Consumer lag unknown: ${queues.kafka_error}`) : null;
    return [h("h2", {}, "Overview"), cards, notes, h("h3", {}, `Queues (finished: last ${queues.minutes} minutes)`), table, note];
  });
}

function parseQuery(q) {
  const out = {};
  for (const [k, v] of new URLSearchParams(q || "")) if (v) out[k] = v;
  return out;
}

function tasks(root, query) {
  const filters = parseQuery(query);
  const cursors = []; // cursors of the pages before this one
  let cursor = filters.cursor || null;
  delete filters.cursor;
  const form = h(
    "form",
    { id: "task-filters", class: "filters" },
    h(
      "label",
      {},
      "Status ",
      h("select", { name: "status" }, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, s))),
    ),
    h("label", {}, "Task ", h("input", { name: "task", value: filters.task || "", size: 12 })),
    h("label", {}, "Queue ", h("input", { name: "queue", value: filters.queue || "", size: 10 })),
    h("label", {}, "Worker ", h("input", { name: "worker", value: filters.worker || "", size: 36, placeholder: "uuid" })),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    location.hash = `#/tasks${p.toString() ? `?${p}` : ""}`;
  });
  const list = h("div", {});
  const pager = h("div", { class: "pager" });
  root.replaceChildren(h("h2", {}, "Tasks"), form, list, pager);
  let stop = () => {};
  const load = () => {
    stop();
    stop = every(list, async () => {
      const p = new URLSearchParams(filters);
      p.set("limit", "25");
      if (cursor) p.set("cursor", cursor);
      const page = await api(`/tasks?${p}`);
      pager.replaceChildren(
        h("button", { type: "button", id: "prev-page", disabled: cursors.length === 0, on: { click: () => { cursor = cursors.pop() || null; load(); } } }, "‹ Newer"),
        h("button", { type: "button", id: "next-page", disabled: !page.next_cursor, on: { click: () => { cursors.push(cursor); cursor = page.next_cursor; load(); } } }, "Older ›"),
      );
      if (page.tasks.length === 0) return h("p", { class: "muted" }, "No task matches.");
      return h(
        "table",
        { id: "tasks" },
        h("thead", {}, h("tr", {}, ["Id", "Task", "Queue", "Status", "Attempts", "Progress", "Created", "Finished"].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          page.tasks.map((t) =>
            h(
              "tr",
              { "data-id": t.id },
              h("td", {}, taskLink(t.id)),
              h("td", {}, t.task),
              h("td", {}, t.queue),
              h("td", {}, badge(t.status)),
              h("td", { class: "num" }, `${t.attempts}/${t.max_retries + 1}`),
              h("td", {}, listProgress(t)),
              h("td", {}, fmtTime(t.created_at)),
              h("td", {}, fmtTime(t.finished_at)),
            ),
          ),
        ),
      );
    });
  };
  load();
  return () => stop();
}

/**
 * A task's progress in the list: its last report while it runs; 100 % once
 * it succeeded (its last report, made while it ran, is below that); nothing
 * for a task that failed or was cancelled, or never reported any.
 */
function listProgress(t) {
  if (t.status === "success") return t.progress ? "100 %" : "";
  if (TERMINAL.has(t.status) || !t.progress) return "";
  return `${Math.round(t.progress.percent)} %`;
}

function field(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function task(root, id) {
  const controller = new AbortController();
  const head = h("div", {});
  const live = h("span", { id: "live", class: "live" }, "");
  const actions = h("div", { class: "actions" });
  const note = h("p", { id: "action-note", class: "muted" });
  const details = h("div", { id: "task-details" });
  const attempts = h("div", { id: "attempts" });
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/tasks" }, "‹ Tasks")),
    head,
    actions,
    note,
    details,
    h("h3", {}, "Attempts"),
    attempts,
  );
  let current = null;
  // Cancel and Retry are shown only to a key with the operate scope.
  let operate = false;

  const act = async (verb) => {
    note.textContent = `${verb}…`;
    try {
      const t = await post(`/tasks/${encodeURIComponent(id)}/${verb}`);
      note.textContent = verb === "cancel"
        ? (t.status === "cancelled" ? "Cancelled." : "Cancel requested: the worker stops it within a heartbeat.")
        : "Queued again as a new attempt.";
      show(t);
      if (verb === "retry") follow();
    } catch (e) {
      note.textContent = e instanceof ApiError ? `${e.status}: ${e.message}` : String(e);
    }
  };

  const show = (t) => {
    current = t;
    head.replaceChildren(h("h2", {}, "Task ", h("span", { class: "mono" }, t.id), " ", badge(t.status), " ", live));
    actions.replaceChildren(
      ...[
      !operate || TERMINAL.has(t.status) ? null : h("button", { type: "button", id: "cancel", class: "danger", on: { click: () => act("cancel") } }, t.cancel_requested_at ? "Cancel requested" : "Cancel"),
      operate && (t.status === "failed" || t.status === "cancelled") ? h("button", { type: "button", id: "retry", on: { click: () => act("retry") } }, "Retry") : null,
      ].filter(Boolean),
    );
    // A bar only while the task can still move; once it ended, the last
    // report (made while it ran) is history, not where it stands.
    const progress = t.status === "success"
      ? "done (100 %)"
      : !t.progress
      ? "–"
      : TERMINAL.has(t.status)
      ? `stopped at ${Math.round(t.progress.percent)} % ${t.progress.message || ""}`
      : h("span", {}, h("progress", { id: "progress", max: 100, value: t.progress.percent }), ` ${Math.round(t.progress.percent)} % ${t.progress.message || ""}`);
    const outcome = t.status === "success"
      ? [h("h3", {}, "Result"), h("pre", { id: "result" }, pretty(t.result))]
      : t.error
        ? [h("h3", {}, "Error"), h("pre", { id: "error", class: "error-text" }, `${t.error.kind}: ${t.error.message}`)]
        : [];
    details.replaceChildren(
      h(
        "dl",
        { class: "grid" },
        field("Task", t.task),
        field("Queue", t.queue),
        field("Status", h("span", { id: "status" }, t.status)),
        field("Progress", progress),
        field("Attempts", `${t.attempts} of ${t.max_retries + 1}`),
        field("Timeout", `${t.timeout} s`),
        field("Worker", t.worker_id ? h("span", { class: "mono" }, t.worker_id) : "–"),
        field("Trace", t.trace_id ? h("span", { class: "mono", id: "trace" }, t.trace_id) : "–"),
        field("Created", fmtTime(t.created_at)),
        field("Run at", fmtTime(t.run_at)),
        field("Started", fmtTime(t.started_at)),
        field("Finished", fmtTime(t.finished_at)),
        field("Cancel requested", fmtTime(t.cancel_requested_at)),
      ),
      h("h3", {}, "Arguments"),
      h("pre", { id: "args" }, `args   ${JSON.stringify(t.args)}\nkwargs ${JSON.stringify(t.kwargs)}`),
      ...outcome,
    );
  };

  const loadAttempts = async () => {
    try {
      const list = await api(`/tasks/${encodeURIComponent(id)}/attempts`);
      if (list.length === 0) {
        attempts.replaceChildren(h("p", { class: "muted" }, "Not claimed yet."));
        return;
      }
      const t0 = Math.min(...list.map((a) => Date.parse(a.started_at)));
      const t1 = Math.max(...list.map((a) => (a.finished_at ? Date.parse(a.finished_at) : Date.now())));
      const span = Math.max(1, t1 - t0);
      attempts.replaceChildren(
        h(
          "table",
          { class: "timeline" },
          h("thead", {}, h("tr", {}, ["#", "Worker", "Started", "Took", "Outcome", "", "Error"].map((c) => h("th", {}, c)))),
          h(
            "tbody",
            {},
            list.map((a) => {
              const start = Date.parse(a.started_at);
              const end = a.finished_at ? Date.parse(a.finished_at) : Date.now();
              const bar = h("div", { class: `span o-${a.outcome || "running"}` });
              bar.style.marginLeft = `${((start - t0) / span) * 100}%`;
              bar.style.width = `${Math.max(1, ((end - start) / span) * 100)}%`;
              return h(
                "tr",
                { "data-attempt": a.attempt },
                h("td", { class: "num" }, a.attempt),
                h("td", { class: "mono" }, a.worker_id.slice(0, 8)),
                h("td", {}, fmtTime(a.started_at)),
                h("td", { class: "num" }, fmtAge((end - start) / 1000)),
                h("td", {}, a.outcome || "running"),
                h("td", { class: "track" }, bar),
                h("td", {}, a.error ? `${a.error.kind}: ${a.error.message}` : ""),
              );
            }),
          ),
        ),
      );
    } catch (e) {
      attempts.replaceChildren(errorNote(e));
    }
  };

  // Follows the task's event stream until it is terminal; reconnects after a
  // dropped connection (a gateway restart), at most every 2 s.
  const follow = async () => {
    while (!controller.signal.aborted) {
      live.textContent = "● live";
      live.className = "live on";
      try {
        await streamEvents(`/tasks/${encodeURIComponent(id)}/events`, controller.signal, (name, t) => {
          show(t);
          if (name === "status") loadAttempts();
        });
        if (current && TERMINAL.has(current.status)) break;
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError) {
          live.textContent = "";
          if (e.status === 404) details.replaceChildren(h("p", { class: "error-note" }, `No task with id '${id}'.`));
          else if (e.status !== 401 && e.status !== 403) note.textContent = `${e.status}: ${e.message}`;
          return;
        }
      }
      live.textContent = "○ reconnecting";
      live.className = "live";
      await new Promise((r) => setTimeout(r, REFRESH_MS));
    }
    live.textContent = "";
    live.className = "live";
    loadAttempts();
  };

  Promise.all([api(`/tasks/${encodeURIComponent(id)}`), keyScopes()])
    .then(([t, scopes]) => {
      operate = grants(scopes, "operate");
      show(t);
      loadAttempts();
      if (!TERMINAL.has(t.status)) follow();
    })
    .catch((e) => {
      if (e instanceof ApiError && e.status === 404) details.replaceChildren(h("p", { class: "error-note" }, `No task with id '${id}'.`));
      else details.replaceChildren(errorNote(e));
    });
  return () => controller.abort();
}

function workers(root) {
  return every(root, async () => {
    const { scopes } = await pageKey();
    if (!grants(scopes, "read")) return [h("h2", {}, "Workers"), scopeNote("workers-note", "Workers", "the read scope", scopes)];
    const list = (await api("/workers?limit=500")).workers;
    const rows = list.map((w) =>
      h(
        "tr",
        { "data-worker": w.id, class: w.alive ? "" : "gone" },
        h("td", { class: "mono", title: w.id }, w.id.slice(0, 8)),
        // Host and pid are null for keys without the operate scope.
        h("td", {}, w.hostname == null ? "–" : `${w.hostname}:${w.pid}`),
        h("td", {}, h("span", { class: `badge w-${w.state}` }, w.state)),
        h("td", {}, w.alive ? "yes" : "no"),
        h("td", {}, w.ready ? "yes" : "no"),
        h("td", {}, Object.entries(w.partitions).map(([t, ps]) => `${t}: ${ps.join(", ")}`).join("; ") || "–"),
        h("td", { class: "num" }, `${w.in_flight}/${w.concurrency}`),
        h("td", { class: "num" }, w.processed),
        h("td", { class: "num" }, w.failed),
        h("td", { class: "num" }, fmtAge(since(w.last_heartbeat_at))),
        h("td", {}, w.queues.join(", ")),
        h("td", {}, w.version),
      ),
    );
    return [
      h("h2", {}, "Workers"),
      grants(scopes, "operate") ? null : scopeNote("hosts-note", "Hosts and pids", "the operate scope", scopes),
      list.length === 0
        ? h("p", { class: "muted" }, "No worker has registered.")
        : h(
            "table",
            { id: "workers" },
            h("thead", {}, h("tr", {}, ["Id", "Host:pid", "State", "Alive", "Ready", "Partitions", "In flight", "Processed", "Failed", "Heartbeat age", "Queues", "Version"].map((c) => h("th", {}, c)))),
            h("tbody", {}, rows),
          ),
    ];
  });
}

/** A schedule's spec in words: `cron '0 2 * * *'` or `every 60 s (+15 s)`. */
function fmtSpec(spec) {
  if (spec.cron) return `cron '${spec.cron}'`;
  return `every ${spec.every} s${spec.offset ? ` (+${spec.offset} s)` : ""}`;
}

function schedules(root) {
  return every(root, async () => {
    const { scopes } = await pageKey();
    if (!grants(scopes, "read")) return [h("h2", {}, "Schedules"), scopeNote("schedules-note", "Schedules", "the read scope", scopes)];
    const operate = grants(scopes, "operate");
    const list = (await api("/schedules?limit=500")).schedules;
    const rows = list.map((s) => {
      const toggle = h("button", { type: "button", class: "pause", disabled: !operate }, s.paused ? "Resume" : "Pause");
      toggle.addEventListener("click", async () => {
        toggle.disabled = true;
        try {
          await api(`/schedules/${encodeURIComponent(s.id)}`, {
            method: "PATCH",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ paused: !s.paused }),
          });
          route();
        } catch (e) {
          banner(e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));
          toggle.disabled = false;
        }
      });
      return h(
        "tr",
        { "data-schedule": s.id },
        h("td", { class: "mono" }, s.id),
        h("td", { class: "mono" }, fmtSpec(s.spec)),
        h("td", {}, s.timezone),
        h("td", {}, s.task.task),
        h("td", {}, s.task.queue),
        h("td", {}, s.overlap),
        h("td", { class: "paused" }, s.paused ? "yes" : "no"),
        h("td", { class: "num runs" }, s.runs),
        h("td", { class: "num skipped" }, s.skipped),
        h("td", { class: "next" }, fmtTime(s.next_fire_times[0])),
        h("td", {}, h("a", { class: "tasks", href: `#/tasks?schedule=${encodeURIComponent(s.id)}` }, "tasks")),
        h("td", {}, toggle),
      );
    });
    return [
      h("h2", {}, "Schedules"),
      operate ? null : scopeNote("pause-note", "Pausing and resuming", "the operate scope", scopes),
      list.length === 0
        ? h("p", { class: "muted" }, "No schedule (POST /schedules, or `yadtq schedules create`).")
        : h(
            "table",
            { id: "schedules" },
            h("thead", {}, h("tr", {}, ["Id", "Spec", "Zone", "Task", "Queue", "Overlap", "Paused", "Runs", "Skipped", "Next fire", "", ""].map((c) => h("th", {}, c)))),
            h("tbody", {}, rows),
          ),
    ];
  });
}

function deadLetters(root) {
  const results = new Map(); // "partition/offset" -> what the last replay said
  const list = h("div", {});
  const pager = h("div", { class: "pager" });
  let before = null; // offset the page ends before (null: the newest); yadtq's topic has one partition
  let stop = () => {};
  root.replaceChildren(
    h("h2", {}, "Dead letters"),
    h(
      "p",
      { class: "muted" },
      "Records a worker found on a task topic that are not valid envelopes. Replay sends the task a dead letter names again, " +
        "only while that task is still queued: a task that ran, or is running, is never run twice.",
    ),
    list,
    pager,
  );
  const load = () => {
    stop();
    stop = every(list, () => fetchPage());
  };
  const fetchPage = async () => {
    const me = await pageKey();
    if (!grants(me.scopes, "admin")) {
      pager.replaceChildren();
      return scopeNote("dead-letters-note", "Dead letters", "the admin scope (its own tenant's) or cluster (every tenant's)", me.scopes);
    }
    const scope = me.scopes.includes("cluster")
      ? "This cluster key sees every tenant's dead letters."
      : `This admin key sees the dead letters naming tenant ${me.tenant}'s tasks; a cluster key sees all.`;
    const page = await api(`/dead-letters?limit=50${before === null ? "" : `&before=${before}`}`);
    pager.replaceChildren(
      h("button", { type: "button", disabled: before === null, on: { click: () => { before = null; load(); } } }, "‹ Newest"),
      h("button", { type: "button", disabled: page.next_before === null, on: { click: () => { before = page.next_before; load(); } } }, "Older ›"),
      h("span", { class: "muted" }, ` ${page.retained} held on ${page.topic}. ${scope}`),
    );
    if (page.dead_letters.length === 0) {
      // A read stops at its scan budget: an empty page with older records left to read.
      const more = page.next_before === null ? "" : " among the records read; older ones remain (Older ›)";
      return h("p", { class: "muted" }, `No dead letter on ${page.topic}${more}.`);
    }
    return h(
      "table",
      { id: "dead-letters" },
      h("thead", {}, h("tr", {}, ["Address", "When", "Key", "Reason", "Origin", "Value", ""].map((c) => h("th", {}, c)))),
      h(
        "tbody",
        {},
        page.dead_letters.map((d) => {
          const addr = `${d.partition}/${d.offset}`;
          const out = h("div", { class: "replay-result" }, results.get(addr) || "");
          const button = h("button", { type: "button", class: "replay" }, "Replay");
          button.addEventListener("click", async () => {
            button.disabled = true;
            out.textContent = "Replaying…";
            try {
              const t = await post(`/dead-letters/${addr}/replay`);
              results.set(addr, `Sent again: task ${t.id} (${t.status})`);
              out.replaceChildren("Sent again: ", taskLink(t.id));
            } catch (e) {
              const text = e instanceof ApiError ? `${e.status}: ${e.message}` : String(e);
              results.set(addr, text);
              out.textContent = text;
            }
            button.disabled = false;
          });
          return h(
            "tr",
            { "data-address": addr, "data-key": d.key || "" },
            h("td", { class: "mono" }, addr),
            h("td", {}, fmtTime(d.timestamp)),
            h("td", { class: "mono" }, d.key || "–"),
            h("td", {}, d.reason || "–"),
            h("td", { class: "mono" }, d.origin || "–"),
            h("td", {}, h("pre", { class: "payload" }, d.payload === null ? "(no value)" : d.payload + (d.truncated ? ` … (${d.payload_bytes} bytes)` : ""))),
            h("td", {}, button, out),
          );
        }),
      ),
    );
  };
  load();
  return () => stop();
}

// ---- routing -------------------------------------------------------------

let leave = () => {};

function route() {
  leave();
  // A refusal belongs to the page that met it: each page starts without one.
  banner(null);
  showKeyScopes();
  const root = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  let view = "overview";
  if (parts[0] === "tasks" && parts[1]) {
    view = "tasks";
    leave = task(root, decodeURIComponent(parts.slice(1).join("/")));
  } else if (parts[0] === "tasks") {
    view = "tasks";
    leave = tasks(root, query);
  } else if (parts[0] === "workers") {
    view = "workers";
    leave = workers(root);
  } else if (parts[0] === "schedules") {
    view = "schedules";
    leave = schedules(root);
  } else if (parts[0] === "dead-letters") {
    view = "dead-letters";
    leave = deadLetters(root);
  } else {
    leave = overview(root);
  }
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
}

function showKeyState() {
  const has = !!sessionStorage.getItem(KEY);
  document.getElementById("key-state").textContent = has ? "key set for this tab" : "no key";
  document.getElementById("key-forget").disabled = !has;
}

function setupKey() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    input.value = "";
    banner(null);
    showKeyState();
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    banner(null);
    showKeyState();
    route();
  });
  showKeyState();
}

document.addEventListener("DOMContentLoaded", () => {
  setupKey();
  window.addEventListener("hashchange", route);
  route();
});
