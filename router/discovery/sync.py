"""Keeps the router's workers and routing in line with the cluster, without a restart.

Every `interval_s`: re-read the router config, fetch the pools' endpoints, then

    new addresses      ──► connect (GetInfo), join the registry and the cluster view
    vanished addresses ──► leave the registry first (no new picks), then close once
                           this router's requests on them end (bounded), in the
                           background: a scale-in drains the worker, it does not
                           cut its streams
    changed policies   ──► rebuild only those models' schedulers; swap the table;
                           reload semantic aliases whose policy changed (skipped
                           without a scheduler factory: `triskel up` keeps its own)

A model whose policy did not change keeps its scheduler object, and with it the
state its plugins built (hash rings, prefix history).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from triskel.common.router_cluster import RouterClusterConfig
from triskel.common.routing_api import RoutingSettings
from triskel.router.admission import admission_for
from triskel.router.backends.addresses import open_worker
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.cluster import ClusterView
from triskel.router.discovery.desired import (
    PoolKey,
    WantedWorker,
    pools_to_watch,
    settings_per_model,
    wanted_workers,
)
from triskel.router.discovery.semantic_sync import SemanticSync
from triskel.router.registry import WorkerRegistry
from triskel.router.routing_table import ModelRouting, RoutingTable
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.scheduler import Scheduler
from triskel.router.worker_client import WorkerCallError, WorkerClient

_log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
# How long a removed worker's connection stays open for the requests still on it. The
# operator deletes the pod once its work ends, or after its drain timeout (120 s by
# default): no request outlives that.
LEAVING_GRACE_S = 180.0
LEAVING_POLL_S = 0.1
EndpointsFetcher = Callable[[Sequence[PoolKey]], Awaitable[Mapping[PoolKey, Sequence[str]]]]
SchedulerFactory = Callable[[RoutingSettings], Scheduler]


@dataclass(slots=True)
class _Installed:
    settings: RoutingSettings
    routing: ModelRouting


class ClusterSync:
    def __init__(
        self,
        registry: WorkerRegistry,
        cluster: ClusterView,
        table: RoutingTable,
        build_scheduler: SchedulerFactory | None,
        fetch_endpoints: EndpointsFetcher,
        semantic: SemanticSync | None = None,
        dialing: WorkerDialing | None = None,
        processes: int = 1,
    ) -> None:
        """`build_scheduler` None: membership only, the routing table is never replaced.
        `dialing`: how new workers are called (mTLS, frames), as at start. `processes`: the
        sibling processes the router's admission limits are shared by."""
        self._registry = registry
        self._cluster = cluster
        self._table = table
        self._build_scheduler = build_scheduler
        self._fetch_endpoints = fetch_endpoints
        self._semantic = semantic
        self._dialing = dialing
        self._processes = processes
        self._installed: dict[str, _Installed] = {}
        self._leaving: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Closes the connections of removed workers now, whatever is still on them."""
        for task in self._leaving:
            task.cancel()
        await asyncio.gather(*self._leaving, return_exceptions=True)

    async def apply(self, config: RouterClusterConfig) -> None:
        """One round: workers first (so new models have workers), then routing."""
        endpoints = await self._fetch_endpoints(pools_to_watch(config))
        await self._sync_workers(wanted_workers(config, endpoints))
        if self._build_scheduler is not None:
            self._sync_routing(settings_per_model(config), self._build_scheduler)
        if self._semantic is not None:
            self._semantic.apply(config)

    async def _sync_workers(self, wanted: Mapping[str, WantedWorker]) -> None:
        current = {_address_of(w): w for w in self._registry.all_workers()}
        added = [
            open_worker(wanted[a].endpoint(), self._dialing)
            for a in sorted(wanted.keys() - current)
        ]
        connected = await asyncio.gather(*(self._connect(c) for c in added))
        joined = [client for client, ok in zip(added, connected, strict=True) if ok]
        gone = [current[address] for address in sorted(current.keys() - wanted.keys())]
        if not joined and not gone:
            return
        kept = [w for a, w in current.items() if a in wanted]
        # The cluster view knows a worker before any pick can see it, and forgets it only
        # after picks no longer can.
        for client in joined:
            self._cluster.add_worker(client)
        problems = self._registry.replace([*kept, *joined])
        for problem in problems:
            _log.warning("not serving: %s", problem)
        for client in gone:
            await self._cluster.remove_worker(client.worker_id)
            task = asyncio.create_task(self._close_when_idle(client))
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)
        _log.info("workers: +%d -%d", len(joined), len(gone))

    async def _close_when_idle(self, client: WorkerClient) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEAVING_GRACE_S
        try:
            while self._cluster.requests_on(client.worker_id) > 0:
                if loop.time() >= deadline:
                    _log.warning(
                        "worker %s left with requests still on it after %.0f s; closing",
                        client.worker_id,
                        LEAVING_GRACE_S,
                    )
                    break
                await asyncio.sleep(LEAVING_POLL_S)
        finally:
            await client.close()

    async def _connect(self, client: WorkerClient) -> bool:
        try:
            await client.connect(CONNECT_TIMEOUT_S)
        except (WorkerCallError, TimeoutError) as error:
            _log.warning("cannot reach worker %s yet: %s", client.address, error)
            await client.close()
            return False
        return True

    def _sync_routing(
        self, wanted: Mapping[str, RoutingSettings], build_scheduler: SchedulerFactory
    ) -> None:
        installed: dict[str, _Installed] = {}
        changed = False
        for model, settings in wanted.items():
            previous = self._installed.get(model)
            if previous is not None and previous.settings == settings:
                installed[model] = previous
                continue
            try:
                scheduler = build_scheduler(settings)
            except PluginConfigError as error:
                # The operator refuses such policies; keep what served before, if anything.
                _log.error("model %s: routing policy refused: %s", model, error)
                if previous is not None:
                    installed[model] = previous
                continue
            admission = admission_for(settings.admission, self._processes)
            installed[model] = _Installed(settings, ModelRouting(scheduler, settings, admission))
            changed = True
        if changed or installed.keys() != self._installed.keys():
            self._installed = installed
            per_model = {model: entry.routing for model, entry in installed.items()}
            self._table.replace(self._table.default, per_model)
            _log.info("routing reloaded for %s", ", ".join(sorted(per_model)) or "no models")


def _address_of(worker: WorkerClient) -> str:
    """The pool endpoint a client was opened for (vLLM clients hold it as a URL)."""
    return worker.address.removeprefix("http://")


async def run_sync(
    sync: ClusterSync,
    read_config: Callable[[], RouterClusterConfig],
    stop: asyncio.Event,
    interval_s: float = 2.0,
) -> None:
    """Applies the config every `interval_s` until `stop` is set; errors never end it."""
    try:
        while not stop.is_set():
            try:
                await sync.apply(read_config())
            except Exception:  # a bad round is logged; the next one tries again
                _log.exception("cluster sync round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        await sync.close()
