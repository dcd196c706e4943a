"""A failed worker call tells the client what to do, and the router's log which worker."""

from __future__ import annotations

import logging
from typing import cast

import pytest

from triskel.common.api import Role
from triskel.router.metrics import RouterMetrics
from triskel.router.types import RequestError, ServiceError
from triskel.router.worker_calls import StageTimeouts, WorkerCalls
from triskel.router.worker_client import (
    CallFailure,
    WorkerCallError,
    WorkerClient,
    WorkerIdentity,
)

ADDRESS = "127.0.0.1:50123"
IDENTITY = WorkerIdentity(
    worker_id="decode-7",
    address=ADDRESS,
    role=Role.DECODE,
    model="m",
    profile="p",
    block_size_tokens=16,
    max_context_tokens=4096,
    kv_connector="tcp",
    hash_salt="",
)


class _Worker:
    """What `WorkerCalls.call` reads of a worker."""

    worker_id = IDENTITY.worker_id
    address = ADDRESS
    identity = IDENTITY


async def failed_call(error: WorkerCallError) -> Exception:
    calls = WorkerCalls(RouterMetrics(), StageTimeouts())
    with pytest.raises(Exception) as caught:
        async with calls.call(cast(WorkerClient, _Worker()), "decode"):
            raise error
    return caught.value


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (CallFailure.UNAVAILABLE, "the decode step for model m failed; retry later"),
        (CallFailure.TIMEOUT, "the decode step for model m timed out; retry later"),
    ],
)
@pytest.mark.asyncio
async def test_a_failed_call_names_no_worker_or_address(
    failure: CallFailure, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Finding 8: the 503 read "decode on worker decode-7 failed: connect to 127.0.0.1:...".
    details = f"failed to connect to all addresses; last error: {ADDRESS}: refused"
    with caplog.at_level(logging.WARNING, logger="triskel.router.unavailable"):
        error = await failed_call(WorkerCallError(failure, details))
    assert isinstance(error, ServiceError) and error.retry_after_s == 1.0
    assert str(error) == expected
    # The operator still learns which worker, where, and why: in one log line.
    (record,) = caplog.records
    assert "decode-7" in record.getMessage() and ADDRESS in record.getMessage()


@pytest.mark.asyncio
async def test_a_refused_input_stays_the_clients_error() -> None:
    error = await failed_call(
        WorkerCallError(CallFailure.INVALID_ARGUMENT, "too long", "max_tokens")
    )
    assert isinstance(error, RequestError) and error.field_name == "max_tokens"
