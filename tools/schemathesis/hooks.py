"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

One hook, narrowly scoped: a "schema-valid request rejected" failure (ST202,
the positive_data_acceptance check) is dropped when the request breaks a rule
of POST /tasks or POST /tasks/batch that the OpenAPI document states in words
(its 400 answers' descriptions) but no OpenAPI construct can express, and the
gateway's 400 problem document names that very rule's field. Each compares
values, or a header with the body, or depends on the gateway's clock:

- `id`, `task-id` and the `Idempotency-Key` header name one id when more than
  one is given (400, the second one named): equality of two values, one of
  them in a header, which no schema relates to the body;
- `retry_backoff_cap` is at least `retry_backoff_base` (400 `retry_backoff_cap`);
- `eta` is at most YADTQ_MAX_SCHEDULE_AHEAD (30 days) ahead of now (400 `eta`);
- a batch's `Idempotency-Key` leaves room for `.<index>` within 128 characters
  (400 `Idempotency-Key`): its length limit depends on the batch's size.

The schedules' rules of the same kind (their 400 answers' descriptions say
them): a `spec` holds exactly one of `cron` and `every`, a cron pattern is
valid, `offset` is below `every`, `timezone` names an IANA zone, `end_at` is
not before `start_at` (at `PATCH`, with the schedule's stored values too), a
template's `retry_backoff_cap` is at least its `retry_backoff_base`, and a
backfill's `end` is not before its `start` and spans at most 1,000 ticks. A
schedule-valid request breaking one of them is forgiven when the 400 names
that field.

The workflows' rules of the same kind (the `depends_on` and `ref`
descriptions say them): a node's `depends_on` names refs of other nodes, each
once, with no cycle (400 `tasks[i].depends_on[j]`), refs are unique (400
`tasks[i].ref`), and a node's `retry_backoff_cap` is at least its
`retry_backoff_base`.

What the document can say, it says, and this hook no longer forgives: `countdown`
and `eta` are exclusive (a `not` on SubmitRequest, so valid requests keep it);
an undeclared queue or a task outside the catalogue is the documented 422 for
a well-formed request naming what the gateway's configuration lacks
(schemathesis.toml accepts 422 for schema-valid requests); a batch of more
than 1,000 tasks is beyond `maxItems` and answered the documented 413.
Any other failure, and any rejection of a request that keeps these rules, still
fails the run.

A second hook keeps the run's own API key (YADTQ_API_KEY) alive: stateful
sequences take key ids from `GET /admin/keys` to `POST /admin/keys/{id}/revoke`,
and a revoked key would turn every later request into a 401, which the
checks accept, so the rest of the run would test nothing. Revoking one's own
key needs `confirm=self`: a revocation of the run's key is sent without that
confirmation (other `confirm` values kept), so the gateway refuses it with the
documented 409 and the key survives; the guard itself is what gets tested.
"""

import json
import os
import re
import urllib.request
from datetime import datetime, timedelta, timezone

import schemathesis

MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_ID = 128


def _breaks(task, header_key, index=None):
    """The fields whose cross-field rule `task` (one submission) breaks."""
    if not isinstance(task, dict):
        return set()
    broken = set()
    ids = [v for v in (task.get("id"), task.get("task-id")) if v is not None]
    if index is None and header_key is not None:
        ids.append(header_key)
    if len(set(map(str, ids))) > 1:
        broken |= {"id", "task-id", "Idempotency-Key"}
    base, cap = task.get("retry_backoff_base"), task.get("retry_backoff_cap")
    if isinstance(base, (int, float)) and isinstance(cap, (int, float)) and cap < base:
        broken.add("retry_backoff_cap")
    eta = task.get("eta")
    if isinstance(eta, str):
        try:
            when = datetime.fromisoformat(eta.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            if when - datetime.now(timezone.utc) > MAX_SCHEDULE_AHEAD - timedelta(minutes=1):
                broken.add("eta")
        except (ValueError, OverflowError):
            pass
    return broken


def _header(case, name):
    for k, v in (case.headers or {}).items():
        if k.lower() == name.lower():
            return v
    return None


# Fields whose 400 is a schedule rule no schema states (see above).
SCHEDULE_RULES = {
    "spec",
    "spec.cron",
    "spec.offset",
    "timezone",
    "end_at",
    "task.retry_backoff_cap",
    "end",
}


WORKFLOW_NODE_FIELD = re.compile(r"^tasks\[(\d+)\]\.(ref|depends_on\[\d+\]|retry_backoff_cap)$")


def _breaks_workflow_rule(body, field):
    """Whether the 400 naming `field` is one of the cross-node rules above."""
    m = WORKFLOW_NODE_FIELD.match(field)
    if not m or not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return False
    i, what = int(m.group(1)), m.group(2)
    nodes = body["tasks"]
    node = nodes[i] if i < len(nodes) and isinstance(nodes[i], dict) else {}
    if what == "retry_backoff_cap":
        base, cap = node.get("retry_backoff_base"), node.get("retry_backoff_cap")
        return isinstance(base, (int, float)) and isinstance(cap, (int, float)) and cap < base
    if what == "ref":
        earlier = [n.get("ref") for n in nodes[:i] if isinstance(n, dict)]
        return node.get("ref") in earlier
    return True  # depends_on: an unknown, repeated or cyclic ref (values related across nodes)


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if failure.code != "ST202" or case.method.upper() not in ("POST", "PATCH"):
        return True
    try:
        field = response.json().get("field") or ""
    except Exception:
        return True
    if case.path.startswith("/schedules") and response.status_code == 400:
        return field not in SCHEDULE_RULES
    if case.path == "/workflows" and response.status_code == 400:
        return not _breaks_workflow_rule(case.body, field)
    key = _header(case, "Idempotency-Key")
    body = case.body
    if case.path == "/tasks":
        return field not in _breaks(body, key)
    if case.path == "/tasks/batch" and isinstance(body, dict) and isinstance(body.get("tasks"), list):
        tasks = body["tasks"]
        if field == "Idempotency-Key" and key is not None and len(f"{key}.{len(tasks) - 1}") > MAX_ID:
            return False
        for i, task in enumerate(tasks):
            prefix = f"tasks[{i}]."
            if field.startswith(prefix) and field[len(prefix) :] in _breaks(task, key, i):
                return False
    return True


# The length of a token's prefix that `GET /admin/keys` shows (`yadtq_` and 6).
TOKEN_PREFIX_LEN = 12
_own_key_id = None


def _own_key():
    """The id of the key the run sends, looked up once through the admin API."""
    global _own_key_id
    if _own_key_id is None:
        token = os.environ["YADTQ_API_KEY"]
        request = urllib.request.Request(
            os.environ["YADTQ_URL"] + "/admin/keys", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            keys = json.load(response)
        _own_key_id = next(
            (k["id"] for k in keys if k["token_prefix"] == token[:TOKEN_PREFIX_LEN] and not k.get("revoked_at")), ""
        )
    return _own_key_id


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.method.upper() != "POST" or case.path != "/admin/keys/{id}/revoke":
        return
    key_id = str((case.path_parameters or {}).get("id", ""))
    if not key_id or key_id != _own_key():
        return
    query = dict(case.query or {})
    confirm = query.pop("confirm", None)
    if isinstance(confirm, str):
        kept = [c for c in confirm.split(",") if c != "self"]
        if kept:
            query["confirm"] = ",".join(kept)
    elif confirm is not None:
        query["confirm"] = confirm
    case.query = query
