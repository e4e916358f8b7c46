"""The live gateway under test: YADTQ_URL (scripts/test-clients.sh starts one,
with a worker serving the queue YADTQ_SDK_QUEUE, default `sdk_py`), and
YADTQ_API_KEY, an admin key of it (scripts/test-clients.sh makes one)."""

import os
import uuid

import pytest

from yadtq import Yadtq

URL = os.environ.get("YADTQ_URL", "http://127.0.0.1:8080")
QUEUE = os.environ.get("YADTQ_SDK_QUEUE", "sdk_py")
API_KEY = os.environ.get("YADTQ_API_KEY", "")


@pytest.fixture
def q() -> Yadtq:
    if not API_KEY:
        pytest.fail(f"set YADTQ_API_KEY to an admin key of the gateway at {URL}")
    return Yadtq(URL, api_key=API_KEY)


@pytest.fixture
def new_id():
    """Fresh client-chosen task ids, unique across runs against one gateway."""
    run = uuid.uuid4().hex[:12]
    return lambda name: f"py-{run}-{name}"
