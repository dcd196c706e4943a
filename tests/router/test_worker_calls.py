"""A failed worker call tells the client what to do, and the router's log which worker."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from triskel.common.api import Role
from triskel.router.metrics import RouterMetrics
from triskel.router.types import RequestError, ServiceError
from triskel.router.worker_calls import WorkerCalls
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
    calls = WorkerCalls(RouterMetrics())
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


@pytest.mark.asyncio
async def test_a_silent_workers_calls_end_with_a_retriable_error_naming_the_stage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = RouterMetrics()
    calls = WorkerCalls(metrics)
    started = asyncio.Event()

    async def decode_on_the_silent_worker() -> None:
        async with calls.call(cast(WorkerClient, _Worker()), "decode") as guard:
            started.set()
            await guard.wait(asyncio.Event().wait())

    task = asyncio.create_task(decode_on_the_silent_worker())
    await started.wait()
    assert calls.end_calls_to("decode-8") == 0  # another worker's: nothing to end
    with caplog.at_level(logging.WARNING, logger="triskel.router.unavailable"):
        assert calls.end_calls_to("decode-7") == 1
        with pytest.raises(ServiceError) as caught:
            await asyncio.wait_for(task, 5)
    error = caught.value
    assert str(error) == (
        "the decode step for model m stopped: its worker stopped responding; retry later"
    )
    assert error.retry_after_s == 1.0
    (record,) = caplog.records
    assert "decode-7" in record.getMessage() and ADDRESS in record.getMessage()
    assert calls.end_calls_to("decode-7") == 0  # ended calls are forgotten
    body, _ = metrics.render()
    assert b'stage="decode",status="silent",worker="decode-7"' in body
