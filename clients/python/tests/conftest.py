"""The live gateway under test: YADTQ_URL (scripts/test-clients.sh starts one,
with a worker serving the queue YADTQ_SDK_QUEUE, default `sdk_py`)."""

import os
import uuid

import pytest

from yadtq import Yadtq

URL = os.environ.get("YADTQ_URL", "http://127.0.0.1:8080")
QUEUE = os.environ.get("YADTQ_SDK_QUEUE", "sdk_py")


@pytest.fixture
def q() -> Yadtq:
    return Yadtq(URL)


@pytest.fixture
def new_id():
    """Fresh client-chosen task ids, unique across runs against one gateway."""
    run = uuid.uuid4().hex[:12]
    return lambda name: f"py-{run}-{name}"
