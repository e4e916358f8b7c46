"""Workflows through the SDK: the examples of docs/workflows.md, run as
written (each under a fresh workflow id), and one wait for many tasks."""

import json
import re
import uuid
from pathlib import Path

from yadtq import Yadtq
from yadtq_client.models import WorkflowStatus

DOCS = Path(__file__).resolve().parents[3] / "docs" / "workflows.md"


def documented_examples() -> list[tuple[dict, dict]]:
    """(body, {ref: expected result}) of every JSON block followed by an `expect` comment."""
    text = DOCS.read_text()
    pattern = re.compile(r"```json\n(.*?)```\s*<!-- expect (.*?) -->", re.S)
    return [(json.loads(body), json.loads(expect)) for body, expect in pattern.findall(text)]


def test_the_documented_examples_run_as_documented(q: Yadtq):
    examples = documented_examples()
    assert len(examples) == 4, "chain, fan-out/fan-in, diamond, map-reduce"
    run = uuid.uuid4().hex[:8]
    for body, expected in examples:
        wf = q.submit_workflow(body["tasks"], workflow_id=f"py-{run}-{body['id']}")
        done = q.wait_workflow(wf.id, timeout=120)
        assert done.status == WorkflowStatus.SUCCESS, done
        ids = [f"wf:{wf.id}:{ref}" for ref in expected]
        tasks = q.wait_tasks(ids, timeout=60)
        assert {ref: t.result for ref, t in zip(expected, tasks, strict=True)} == expected


def test_one_wait_answers_for_many_tasks(q: Yadtq, new_id):
    ids = [q.submit("add", [i, i], id=new_id(f"w{i}")).id for i in range(20)]
    tasks = q.wait_tasks(ids, timeout=60)
    assert [t.id for t in tasks] == ids
    assert [t.result for t in tasks] == [2 * i for i in range(20)]
