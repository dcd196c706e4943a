"""How the router calls workers: error mapping, metrics, and ending the calls of a worker
that went silent, in one place. Each stage's time bounds are the model's
`routing.timeouts` (`triskel.common.routing_api.TimeoutsSpec`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from triskel.router.call_guard import GuardedCall, WorkerSilent
from triskel.router.metrics import RouterMetrics
from triskel.router.types import RequestError
from triskel.router.unavailable import unavailable
from triskel.router.worker_client import CallFailure, WorkerCallError, WorkerClient

# The metrics status of a call ended because its worker went silent.
SILENT_STATUS = "silent"


class WorkerCalls:
    def __init__(self, metrics: RouterMetrics) -> None:
        self.metrics = metrics
        # Calls in flight per worker id, so a silent worker's can be ended.
        self._in_flight: dict[str, set[GuardedCall]] = {}

    @contextlib.asynccontextmanager
    async def call(self, worker: WorkerClient, stage: str) -> AsyncIterator[GuardedCall]:
        """A call to `worker` for `stage`: await the worker through the GuardedCall given.

        Maps a failed call to RequestError / ServiceError naming the stage and model
        (the worker only in the router's log).
        """
        guard = GuardedCall()
        calls = self._in_flight.setdefault(worker.worker_id, set())
        calls.add(guard)
        status = "ok"
        try:
            yield guard
        except WorkerCallError as error:
            status = SILENT_STATUS if isinstance(error, WorkerSilent) else str(error.failure)
            raise _mapped(error, worker, stage) from None
        except BaseException:
            status = "aborted"
            raise
        finally:
            guard.close()
            calls.discard(guard)
            if not calls:
                self._in_flight.pop(worker.worker_id, None)
            self.metrics.observe_worker_call(worker.worker_id, stage, status)

    def end_calls_to(self, worker_id: str) -> int:
        """Ends every call in flight to a silent worker (each raises a retriable
        ServiceError); returns how many were still running."""
        calls = [c for c in self._in_flight.get(worker_id, ()) if not c.is_aborted]
        for call in calls:
            call.abort()
        return len(calls)


def _mapped(error: WorkerCallError, worker: WorkerClient, stage: str) -> Exception:
    if error.failure is CallFailure.INVALID_ARGUMENT:
        # The worker knows limits the router could not check (its own context window).
        return RequestError(error.field_name or "request", error.details)
    where = f"worker {worker.worker_id} at {worker.address}"
    model = worker.identity.model
    if isinstance(error, WorkerSilent):
        return unavailable(
            f"the {stage} step for model {model} stopped: its worker stopped responding",
            f"{where} sent no load report for too long",
        )
    if error.failure is CallFailure.TIMEOUT:
        return unavailable(
            f"the {stage} step for model {model} timed out", f"{where}: {error.details}"
        )
    return unavailable(f"the {stage} step for model {model} failed", f"{where}: {error.details}")
