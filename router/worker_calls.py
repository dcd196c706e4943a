"""How the router calls workers: error mapping, metrics, and ending the calls of a worker
that went silent, in one place. Each stage's time bounds are the model's
`routing.timeouts` (`triskel.common.routing_api.TimeoutsSpec`)."""

from __future__ import annotations

from types import TracebackType

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

    def call(self, worker: WorkerClient, stage: str) -> WorkerCall:
        """A call to `worker` for `stage` (`async with`): await the worker through the
        GuardedCall given.

        Maps a failed call to RequestError / ServiceError naming the stage and model
        (the worker only in the router's log).
        """
        return WorkerCall(self._in_flight, self.metrics, worker, stage)

    def end_calls_to(self, worker_id: str) -> int:
        """Ends every call in flight to a silent worker (each raises a retriable
        ServiceError); returns how many were still running."""
        calls = [c for c in self._in_flight.get(worker_id, ()) if not c.is_aborted]
        for call in calls:
            call.abort()
        return len(calls)


class WorkerCall:
    """One call's `async with` (a class, not an async generator: one per worker call,
    ~1 µs less each): tracked while it runs, its outcome counted when it ends."""

    __slots__ = ("_guard", "_in_flight", "_metrics", "_stage", "_worker")

    def __init__(
        self,
        in_flight: dict[str, set[GuardedCall]],
        metrics: RouterMetrics,
        worker: WorkerClient,
        stage: str,
    ) -> None:
        self._in_flight, self._metrics = in_flight, metrics
        self._worker, self._stage = worker, stage
        self._guard = GuardedCall()

    async def __aenter__(self) -> GuardedCall:
        self._in_flight.setdefault(self._worker.worker_id, set()).add(self._guard)
        return self._guard

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        worker_id = self._worker.worker_id
        self._guard.close()
        calls = self._in_flight.get(worker_id)
        if calls is not None:
            calls.discard(self._guard)
            if not calls:
                del self._in_flight[worker_id]
        if error is None:
            self._metrics.observe_worker_call(worker_id, self._stage, "ok")
            return
        if not isinstance(error, WorkerCallError):
            self._metrics.observe_worker_call(worker_id, self._stage, "aborted")
            return  # raised on as it is
        status = SILENT_STATUS if isinstance(error, WorkerSilent) else str(error.failure)
        self._metrics.observe_worker_call(worker_id, self._stage, status)
        raise _mapped(error, self._worker, self._stage) from None


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
