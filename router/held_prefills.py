"""The router's side of the prefill hold (`triskel.router.scheduling.hold`): each held
request waits on a future, set when the hold hands it back (perhaps for its other
candidate). The hold is asked again after every prefill this router finishes, after each
new hold, and every load-report period while anything is held (other routers' work
shows there only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from triskel.router.scheduling.hold import PrefillHold
from triskel.router.scheduling.plugins.dualmap.rebalance import QueuedRequest
from triskel.router.scheduling.types import Endpoint

# The workers' load reports come every 50 ms: asking more often sees nothing new.
POLL_S = 0.05


class HeldPrefills:
    """One model's held prefills; `endpoints` gives its prefill workers' current view."""

    def __init__(
        self,
        hold: PrefillHold,
        endpoints: Callable[[], Mapping[str, Endpoint]],
        observe: Callable[[int, int], None],
        poll_s: float = POLL_S,
    ) -> None:
        self.hold = hold
        self._endpoints = endpoints
        # Told (held now, moves since last told) after every change.
        self._observe = observe
        self._num_moves_told = 0
        self._poll_s = poll_s
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def turn(self, request: QueuedRequest) -> str:
        """The worker to send `request` to: its own at once, or whichever the hold
        releases it for. A cancelled wait leaves the hold."""
        if not self.hold.offer(request, self._endpoints()):
            return request.worker_id
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[request.request_id] = waiter
        self.release()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            return await waiter
        finally:
            # The client left while held (its cancellation cancels the waiter too).
            if waiter.cancelled() or not waiter.done():
                self.hold.forget(request.request_id)
                self._tell()
            self._waiters.pop(request.request_id, None)

    def release(self) -> None:
        """Hands back every held request whose worker has room now."""
        if not len(self.hold):
            return
        for request in self.hold.ready(self._endpoints()):
            waiter = self._waiters.get(request.request_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(request.worker_id)
        self._tell()

    def _tell(self) -> None:
        num_moves = self.hold.num_moves
        self._observe(len(self.hold), num_moves - self._num_moves_told)
        self._num_moves_told = num_moves

    async def _poll(self) -> None:
        while len(self.hold):
            await asyncio.sleep(self._poll_s)
            self.release()
