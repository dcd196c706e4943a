"""How the router calls workers: per-stage timeouts, error mapping and metrics in one place."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from triskel.router.metrics import RouterMetrics
from triskel.router.types import RequestError
from triskel.router.unavailable import unavailable
from triskel.router.worker_client import CallFailure, WorkerCallError, WorkerClient


@dataclass(frozen=True, slots=True)
class StageTimeouts:
    """Upper bounds per stage, in seconds (a hung worker never hangs the client)."""

    encode_s: float = 60.0
    prefill_s: float = 300.0
    # Whole decode stream; long generations on slow profiles need room.
    decode_s: float = 1800.0
    # How long a prefill worker keeps KV waiting for the decode worker's pull.
    kv_hold_ms: int = 30_000


class WorkerCalls:
    def __init__(self, metrics: RouterMetrics, timeouts: StageTimeouts) -> None:
        self.metrics = metrics
        self.timeouts = timeouts

    @contextlib.asynccontextmanager
    async def call(self, worker: WorkerClient, stage: str) -> AsyncIterator[None]:
        """Maps a failed call to RequestError / ServiceError naming the stage and model
        (the worker only in the router's log)."""
        status = "ok"
        try:
            yield
        except WorkerCallError as error:
            status = str(error.failure)
            raise _mapped(error, worker, stage) from None
        except BaseException:
            status = "aborted"
            raise
        finally:
            self.metrics.observe_worker_call(worker.worker_id, stage, status)


def _mapped(error: WorkerCallError, worker: WorkerClient, stage: str) -> Exception:
    if error.failure is CallFailure.INVALID_ARGUMENT:
        # The worker knows limits the router could not check (its own context window).
        return RequestError(error.field_name or "request", error.details)
    where = f"worker {worker.worker_id} at {worker.address}"
    model = worker.identity.model
    if error.failure is CallFailure.TIMEOUT:
        return unavailable(f"the {stage} step for model {model} timed out", where)
    return unavailable(f"the {stage} step for model {model} failed", f"{where}: {error.details}")
