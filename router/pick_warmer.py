"""Dry picks while the router is idle, so the next real pick finds its caches warm.

At a light load (20 requests/s: 50 ms between requests) the router's code and data
leave the CPU's caches between requests, and a pick over four workers takes ~300 µs
instead of ~30 (docs/benchmarks.md, "Where a pick goes when its caches are cold"). Once
no pick has come for `idle_s`, this makes one every `period_s` for each stage of the model
picked last: the same scheduler configuration over the same candidates and the same
prefix indexes, through a twin scheduler (its own plugin objects and random draws, so
nothing a real pick reads or draws changes). The indexes are only read (what a read
expires is what the next real read would expire: expiry depends on the time alone); a
dry pick records nothing, tells no observer and calls no worker.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Callable

from triskel.common.hashing import hash_blocks
from triskel.common.routing_api import RoutingSettings
from triskel.router.dispatcher import ROLES, Dispatcher
from triskel.router.registry import WorkerRegistry
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.scheduler import Scheduler
from triskel.router.scheduling.types import NoEndpointError, Stage

_log = logging.getLogger(__name__)

# A dry pick's prompt: 256 tokens, a walk of a few blocks.
_PROMPT = tuple(range(1, 257))
# The stages a prompt is picked for (an encode pick has no prompt yet).
_STAGES = tuple((stage, role) for stage, role in ROLES.items() if stage is not Stage.ENCODE)


class PickWarmer:
    def __init__(
        self,
        registry: WorkerRegistry,
        dispatcher: Dispatcher,
        context: PluginContext,
        idle_s: float,
        period_s: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._dispatcher = dispatcher
        # The same indexes and history; random draws of its own.
        self._context = copy.copy(context)
        self._context.rng = random.Random(0)
        self._idle_s = idle_s
        self._period_s = period_s
        self._clock = clock
        # Per model: the real scheduler a twin was built for, and the twin.
        self._twins: dict[str, tuple[Scheduler, Scheduler]] = {}
        self.dry_picks = 0

    def warm(self) -> None:
        """A dry pick for each stage of the model picked last (none before any pick)."""
        model = self._dispatcher.last_model
        pools = self._registry.pools(model) if model is not None else None
        if model is None or pools is None:
            return
        dispatcher = self._dispatcher
        routing = dispatcher.table.for_model(model)
        twin = self._twin(model, routing.scheduler, routing.settings)
        identity = pools.any_worker.identity
        # Hashed each time, as every request's prompt is: that step is on the path too.
        hashes = hash_blocks(_PROMPT, identity.block_size_tokens, model, identity.hash_salt)
        for stage, role in _STAGES:
            workers = pools.of(role)
            if not workers:
                continue
            request = dispatcher.scheduling_request(
                routing.settings,
                workers,
                request_id="dry-pick",
                model=model,
                stage=stage,
                token_ids=_PROMPT,
                block_hashes=hashes,
                max_tokens=16,
            )
            try:
                twin.choose(request, dispatcher.cluster.candidates(workers))
            except NoEndpointError:
                continue
            self.dry_picks += 1

    def _twin(self, model: str, scheduler: Scheduler, settings: RoutingSettings) -> Scheduler:
        kept = self._twins.get(model)
        if kept is None or kept[0] is not scheduler:  # a new policy: a new twin
            twin = build_scheduler(settings.scheduling(), default_registry(), self._context)
            kept = self._twins[model] = (scheduler, twin)
        return kept[1]

    async def run(self, stop: asyncio.Event) -> None:
        """Warms every `period_s` once `idle_s` passed without a real pick, until `stop`.
        A dry pick that fails otherwise than for want of workers (a plugin's fault, which
        real picks meet and report too) ends the warming, said once in the log."""
        while not stop.is_set():
            await asyncio.sleep(self._period_s)
            if self._clock() - self._dispatcher.last_pick_s >= self._idle_s:
                try:
                    self.warm()
                except Exception:
                    _log.exception("dry picks stopped: a dry pick failed")
                    return
