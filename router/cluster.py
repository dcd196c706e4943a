"""The router's live view of its workers: load reports, KV events, health, in-flight work.

One watch task per worker keeps two streams open: `StreamStats` (load snapshots)
and `StreamKvEvents` (fed into the precise KV index). A worker whose streams
break is marked unhealthy and left out of scheduling until they reconnect; one
whose load reports stop while its streams stay open (frozen, hung) is marked
unhealthy after `workerSilenceS` and its calls in flight are ended
(`watch_silence`), until its reports resume. The view turns all of it into
`Endpoint`s, the plain data the scheduler reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field

from triskel.common.profiles import LatencyProfile, load_profile
from triskel.router.scheduling.candidates import Candidates, KeptCandidates
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import (
    LOAD_REPORT_INTERVAL_MS,
    ActiveLoad,
    Endpoint,
    WorkerLoad,
    blocks_sent,
)
from triskel.router.staleness import Staleness
from triskel.router.state.kv_direct import KvEventSource, follow_directly
from triskel.router.state.kv_relay import KvRelay
from triskel.router.state.protocols import ImmediateLoadLedger, LoadCounts, SharedState
from triskel.router.worker_client import WorkerCallError, WorkerClient

_log = logging.getLogger(__name__)

STATS_INTERVAL_MS = LOAD_REPORT_INTERVAL_MS
SHARED_LOAD_INTERVAL_S = 0.05
# Membership changes with deployments, not requests: a second's lag is plenty.
MEMBERS_INTERVAL_S = 1.0
_RECONNECT_DELAY_S = 0.5
# Worker lists whose groups `ring_members` remembers (a model's roles, a few models).
_MAX_GROUPED_LISTS = 64
# How often silence is checked: a small share of any sensible workerSilenceS.
SILENCE_CHECK_S = 0.1


@dataclass(slots=True)
class WorkerView:
    client: WorkerClient
    profile: LatencyProfile | None
    load: WorkerLoad = field(default_factory=WorkerLoad)
    # This router's work in flight on the worker (exact, updated synchronously) ...
    own: LoadCounts = field(default_factory=LoadCounts)
    # ... and other router replicas' (from the shared ledger, refreshed periodically).
    others: LoadCounts = field(default_factory=LoadCounts)
    # Requests this router sent since the worker's last load report, and their KV blocks.
    unreported: int = 0
    unreported_blocks: int = 0
    # Healthy until a stream breaks or its reports stop; healthy again when they resume.
    is_healthy: bool = True
    silence: Staleness = field(default_factory=Staleness)
    # Declared silent (its calls ended) and not heard from since.
    is_silent: bool = False

    def endpoint(self) -> Endpoint:
        identity = self.client.identity
        total = self.own + self.others
        return Endpoint(
            worker_id=identity.worker_id,
            model=identity.model,
            block_size_tokens=identity.block_size_tokens,
            load=self.load,
            active=ActiveLoad(
                total.num_requests,
                total.num_prefill_tokens,
                total.num_decode_blocks,
                self.unreported,
                self.unreported_blocks,
            ),
            profile=self.profile,
        )


class ClusterView:
    def __init__(
        self,
        clients: Sequence[WorkerClient],
        kv_index: KvBlockIndex,
        state: SharedState,
        kv_relay: KvRelay | None = None,
    ) -> None:
        self._kv_index = kv_index
        self._state = state
        # Shares KV events between router replicas (with --redis-url); it feeds kv_index.
        self._kv_relay = kv_relay
        self._workers = {c.worker_id: WorkerView(c, _profile_of(c)) for c in clients}
        self._tasks: list[asyncio.Task[None]] = []
        # Each worker's stream watchers, so a worker that leaves takes its own along.
        self._worker_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._is_started = False
        # Shared-state writes run beside the request path, never on it.
        self._writes: set[asyncio.Task[None]] = set()
        # A ledger without I/O (in memory, siblings) is written at once: no task per write.
        load = state.load
        self._apply_load = load.apply if isinstance(load, ImmediateLoadLedger) else None
        # Workers announced by any router replica, per model and role (see ring_members).
        self._announced: dict[str, frozenset[str]] = {}
        # The worker lists `ring_members` was asked about (by identity), and their groups.
        self._groups_of: dict[int, tuple[Sequence[WorkerClient], frozenset[str]]] = {}
        # Workers discovery removed while this router still had requests on them.
        self._leaving: dict[str, WorkerView] = {}
        # Per worker list picked from (one per model and role): its healthy workers'
        # endpoints, brought up to date at each pick (`_changed`), so a pick builds
        # nothing per worker; rebuilt when the list or anyone's health changes.
        self._kept: dict[str, tuple[Sequence[WorkerClient], int, KeptCandidates]] = {}
        self._health_changes = 0
        # Workers whose numbers changed since the kept candidates last read them: read at
        # the next pick, once, not at every change (a request's start and end, a report).
        self._changed: set[str] = set()

    @property
    def kv_index(self) -> KvBlockIndex:
        return self._kv_index

    @property
    def state(self) -> SharedState:
        return self._state

    def start(self) -> None:
        self._is_started = True
        for view in self._workers.values():
            self._watch(view)
        self._tasks.append(asyncio.create_task(self._watch_shared_load()))
        self._tasks.append(asyncio.create_task(self._watch_members()))

    async def close(self) -> None:
        await asyncio.gather(*self._writes, return_exceptions=True)
        tasks = [*self._tasks, *(t for ts in self._worker_tasks.values() for t in ts)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._worker_tasks.clear()

    def add_worker(self, client: WorkerClient) -> None:
        """A worker discovery found (connected already): watched and announced from now."""
        view = WorkerView(client, _profile_of(client))
        self._workers[client.worker_id] = view
        self._health_changes += 1
        if self._is_started:
            self._watch(view)
        self.spawn_write(self._state.members.register(_group(client), client.worker_id))

    async def remove_worker(self, worker_id: str) -> None:
        """Forgets a worker that left: its watchers, its KV blocks, its announcement.
        Requests already on it still count on it until they end (`requests_on`)."""
        view = self._workers.pop(worker_id, None)
        self._health_changes += 1
        if view is not None and view.own.num_requests > 0:
            self._leaving[worker_id] = view
        tasks = self._worker_tasks.pop(worker_id, [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._kv_index.remove_worker(worker_id)
        if view is not None:
            self.spawn_write(self._state.members.deregister(_group(view.client), worker_id))

    def watch_silence(
        self, silence_bound_s: Callable[[str], float], end_calls: Callable[[str], int]
    ) -> None:
        """Checks every SILENCE_CHECK_S for workers silent longer than `silence_bound_s`
        (of the worker's model): each is left out of picks and `end_calls(worker_id)`
        ends its calls in flight, again at every check until it reports again."""
        self._tasks.append(asyncio.create_task(self._watch_silence(silence_bound_s, end_calls)))

    def _watch(self, view: WorkerView) -> None:
        view.silence.heard(asyncio.get_running_loop().time())
        self._worker_tasks[view.client.worker_id] = [
            asyncio.create_task(self._watch_stats(view)),
            asyncio.create_task(self._watch_kv_events(view)),
        ]

    def spawn_write(self, write: Coroutine[object, object, None]) -> None:
        """Runs a shared-state write in the background (it degrades on its own)."""
        task = asyncio.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _write_load(self, worker_id: str, delta: LoadCounts) -> None:
        if self._apply_load is not None:
            self._apply_load(worker_id, delta)
        else:
            self.spawn_write(self._state.load.add(worker_id, delta))

    def endpoints(self, workers: Sequence[WorkerClient]) -> list[Endpoint]:
        """Endpoints for the healthy ones among `workers`."""
        views = (self._workers.get(w.worker_id) for w in workers)
        return [v.endpoint() for v in views if v is not None and v.is_healthy]

    def endpoint_of(self, worker_id: str) -> Endpoint | None:
        """The worker's endpoint, healthy or not (None once it is removed)."""
        view = self._workers.get(worker_id)
        return None if view is None else view.endpoint()

    def candidates(
        self, workers: Sequence[WorkerClient], exclude: Collection[str] = ()
    ) -> Candidates:
        """The healthy ones among `workers`, not in `exclude`, for a pick: kept between
        picks (their columns already built), each pick writing only the rows of workers
        whose numbers changed since the last, so a pick costs nothing per worker here.
        `workers` is a registry list (one per model and role, replaced whole when
        discovery changes it)."""
        if not workers:
            return Candidates(())
        if self._changed:
            self._write_changes()
        group = _group(workers[0])  # one kept per group: a replaced list replaces it
        kept = self._kept.get(group)
        if kept is None or kept[0] is not workers or kept[1] != self._health_changes:
            kept = (workers, self._health_changes, KeptCandidates(self.endpoints(workers)))
            self._kept[group] = kept
        candidates = kept[2].candidates
        if exclude and any(w in exclude for w in candidates.worker_ids):
            return Candidates([e for e in candidates if e.worker_id not in exclude])
        return candidates

    async def announce_workers(self) -> None:
        """Announces every worker this router knows, so all replicas build the same rings."""
        for view in self._workers.values():
            await self._state.members.register(_group(view.client), view.client.worker_id)

    def ring_members(self, workers: Sequence[WorkerClient]) -> frozenset[str]:
        """Workers any replica announced for the models and roles of `workers`.

        Hash rings are built over these, not over the healthy candidates, so every
        replica maps a prefix to the same workers even when their views differ.
        """
        # Asked on every pick with one of a few registry lists: their groups found once.
        cached = self._groups_of.get(id(workers))
        if cached is None or cached[0] is not workers:
            if len(self._groups_of) > _MAX_GROUPED_LISTS:  # lists discovery replaced
                self._groups_of.clear()
            cached = (workers, frozenset(_group(w) for w in workers))
            self._groups_of[id(workers)] = cached
        announced = self._announced
        return frozenset().union(*(announced.get(g, frozenset()) for g in cached[1]))

    def stage_requests(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Requests waiting and running per (model, role), summed over the healthy workers
        as each last reported them: what an autoscaler reading the router needs to see
        each stage's queue (`triskel_stage_requests_*`). The workers' own counts, so every
        router replica exports the same totals."""
        totals: dict[tuple[str, str], tuple[int, int]] = {}
        for view in self._workers.values():
            if not view.is_healthy:
                continue
            identity = view.client.identity
            key = (identity.model, str(identity.role))
            waiting, running = totals.get(key, (0, 0))
            totals[key] = (
                waiting + view.load.num_waiting_requests,
                running + view.load.num_running_requests,
            )
        return totals

    def requests_on(self, worker_id: str) -> int:
        """This router's requests in flight on the worker, removed or not."""
        view = self._workers.get(worker_id) or self._leaving.get(worker_id)
        return 0 if view is None else view.own.num_requests

    def client(self, worker_id: str) -> WorkerClient:
        return self._workers[worker_id].client

    def mark_unhealthy(self, worker_id: str) -> None:
        """A call failed in a way that means the worker is gone (until its streams return)."""
        view = self._workers.get(worker_id)
        if view is not None:  # else removed already: no pick sees it
            self._set_healthy(view, False)

    def prefilling(self, worker_id: str, num_uncached_tokens: int) -> InFlight:
        """Counts a request's prefill work on `worker_id` while the `with` block runs."""
        return InFlight(self, worker_id, LoadCounts(1, num_uncached_tokens, 0))

    def decoding(self, worker_id: str, num_blocks: int) -> InFlight:
        """Counts a request's decode work (its KV blocks) on `worker_id` while the block runs."""
        return InFlight(self, worker_id, LoadCounts(1, 0, num_blocks))

    def _begin(self, worker_id: str, counts: LoadCounts) -> WorkerView | None:
        view = self._workers.get(worker_id) or self._leaving.get(worker_id)
        if view is None:
            # Removed, idle, since it was picked: its connection is closing, so the call
            # fails and the flow retries elsewhere; there is nothing to count on.
            return None
        view.own = view.own + counts
        view.unreported += 1
        view.unreported_blocks += blocks_sent(
            counts.num_prefill_tokens,
            counts.num_decode_blocks,
            view.client.identity.block_size_tokens,
        )
        self._refresh(view)
        self._write_load(worker_id, counts)
        return view

    def _end(self, view: WorkerView, worker_id: str, counts: LoadCounts) -> None:
        view.own = view.own + -counts
        self._refresh(view)
        self._write_load(worker_id, -counts)
        if view.own.num_requests <= 0 and self._leaving.get(worker_id) is view:
            del self._leaving[worker_id]

    async def _watch_shared_load(self) -> None:
        """Other routers' work per worker: the shared totals minus our own share."""
        worker_ids = list(self._workers)
        while True:
            totals = await self._state.load.totals(worker_ids)
            for worker_id, total in totals.items():
                view = self._workers.get(worker_id)
                if view is None:
                    continue  # left since the read began
                others = _at_least_zero(total + -view.own)
                if others != view.others:
                    view.others = others
                    self._refresh(view)
            await asyncio.sleep(SHARED_LOAD_INTERVAL_S)

    async def _watch_members(self) -> None:
        while True:
            for group in {_group(view.client) for view in self._workers.values()}:
                self._announced[group] = frozenset(await self._state.members.members(group))
            await asyncio.sleep(MEMBERS_INTERVAL_S)

    async def _watch_stats(self, view: WorkerView) -> None:
        while True:
            try:
                async for load in view.client.watch_load(STATS_INTERVAL_MS):
                    view.load = load
                    # Sent before the report was taken, so counted in it (but for the
                    # few sent while it travelled: ~a loopback's fraction of a ms).
                    view.unreported = view.unreported_blocks = 0
                    self._set_healthy(view, True)
                    self._refresh(view)
                    view.silence.heard(asyncio.get_running_loop().time())
                    if view.is_silent:
                        view.is_silent = False
                        _log.info(
                            "worker %s reports again: back in rotation", view.client.worker_id
                        )
            except WorkerCallError as error:
                self._lost(view, "stats", error)
            await asyncio.sleep(_RECONNECT_DELAY_S)

    async def _watch_silence(
        self, silence_bound_s: Callable[[str], float], end_calls: Callable[[str], int]
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SILENCE_CHECK_S)
            now_s = loop.time()
            # Removed workers' views are gone with their watchers: nothing reports for them.
            for view in list(self._workers.values()):
                silent_s = view.silence.check(now_s)
                if silent_s < silence_bound_s(view.client.identity.model):
                    continue
                num_ended = end_calls(view.client.worker_id)
                if not view.is_silent and view.is_healthy:
                    _log.warning(
                        "worker %s sent no load report for %.1f s: leaving it out until it "
                        "reports again, ending its %d calls in flight",
                        view.client.worker_id,
                        silent_s,
                        num_ended,
                    )
                view.is_silent = True
                self._set_healthy(view, False)

    async def _watch_kv_events(self, view: WorkerView) -> None:
        """Keeps the KV index current for one worker: through the relay, or directly.

        With a relay one replica subscribes for all and every replica reads Redis
        (directly again while Redis is out); without one this router subscribes itself.
        """
        client = view.client
        if not client.has_kv_events:
            return  # e.g. vLLM-API workers: prefix scorers use the router's own history
        source = KvEventSource(
            client.worker_id,
            client.kv_events,
            lambda error: self._lost(view, "KV events", error),
        )
        if self._kv_relay is not None:
            await self._kv_relay.follow(source)
        else:
            await follow_directly(source, self._kv_index)

    def _lost(self, view: WorkerView, stream: str, error: Exception) -> None:
        if view.is_healthy:
            _log.warning(
                "lost the %s stream of worker %s (%s); leaving it out until it returns",
                stream,
                view.client.worker_id,
                _reason(error),
            )
        self._set_healthy(view, False)

    def _set_healthy(self, view: WorkerView, is_healthy: bool) -> None:
        if view.is_healthy != is_healthy:
            view.is_healthy = is_healthy
            self._health_changes += 1  # who is picked from changed: rebuilt on next pick

    def _refresh(self, view: WorkerView) -> None:
        """The worker's numbers changed: the kept candidates holding it read them at the
        next pick."""
        self._changed.add(view.client.worker_id)

    def _write_changes(self) -> None:
        changed, self._changed = self._changed, set()
        for worker_id in changed:
            view = self._workers.get(worker_id)
            if view is None or not view.is_healthy:
                continue  # not among the kept candidates
            endpoint = view.endpoint()
            for _, _, kept in self._kept.values():
                kept.replace(endpoint)


class InFlight:
    """A request's work counted on a worker while a `with` block runs (a class, not a
    generator-based context manager: one per request, ~0.6 µs less each)."""

    __slots__ = ("_cluster", "_counts", "_view", "_worker_id")

    def __init__(self, cluster: ClusterView, worker_id: str, counts: LoadCounts) -> None:
        self._cluster, self._worker_id, self._counts = cluster, worker_id, counts
        self._view: WorkerView | None = None

    def __enter__(self) -> None:
        self._view = self._cluster._begin(self._worker_id, self._counts)

    def __exit__(self, *exc_info: object) -> None:
        if self._view is not None:
            self._cluster._end(self._view, self._worker_id, self._counts)


def _reason(error: Exception) -> str:
    if isinstance(error, WorkerCallError):
        return f"{error.failure}: {error.details}"
    return repr(error)


def _at_least_zero(counts: LoadCounts) -> LoadCounts:
    # Our own share in the ledger can lag our local counts by a write or two.
    return LoadCounts(
        max(0, counts.num_requests),
        max(0, counts.num_prefill_tokens),
        max(0, counts.num_decode_blocks),
    )


def _group(client: WorkerClient) -> str:
    """The membership group of a worker: workers of one model and role share rings."""
    return f"{client.identity.model}/{client.identity.role}"


def _profile_of(client: WorkerClient) -> LatencyProfile | None:
    """The worker's latency profile when it names one Triskel knows (mock engines do)."""
    try:
        return load_profile(client.identity.profile)
    except ValueError:
        return None
