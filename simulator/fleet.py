"""The instances of a run over time: started, ready, draining, gone.

A static run builds every instance ready at time 0 and never changes them. An
autoscaled run adds instances that become routable only after the profile's start-up
time (the GPU is paid for from the start), and drains the ones it removes: the router
stops sending them work at once, they finish what they hold (running requests, and a
prefill's KV until its decode has pulled it), then they go. GPU-seconds count from an
instance's start to its end (`InstanceRecord.gpu_seconds`).

Instances are never taken out of `instances` (event indices point into it); the
routable lists are what the router picks from.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.api import Role
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.simulator.cache_view import engine_caches_index
from triskel.simulator.instance import Clock, SimInstance
from triskel.workers.engine.core import EngineConfig, EngineCore


@dataclass(slots=True)
class Lifetime:
    worker_id: str
    role: Role
    start_s: float
    ready_s: float | None = None
    drain_s: float | None = None
    end_s: float | None = None


class Fleet:
    """Not thread-safe; the event loop is its only caller."""

    def __init__(self, instances: tuple[SimInstance, ...], config: EngineConfig) -> None:
        self._config = config
        self.instances: list[SimInstance] = list(instances)
        # Every engine by worker id, for the router's KV index (read live).
        self.cores: dict[str, EngineCore] = {i.worker_id: i.core for i in instances}
        self.lifetimes: dict[str, Lifetime] = {
            i.worker_id: Lifetime(i.worker_id, i.role, 0.0, ready_s=0.0) for i in instances
        }
        self._routable: dict[Role, list[SimInstance]] = {role: [] for role in Role}
        for instance in instances:
            self._routable[instance.role].append(instance)
        self._members = {role: self._member_ids(role) for role in Role}
        self._draining: set[str] = set()
        self._next_number = {role: len(self._routable[role]) for role in Role}
        # Load reports every instance makes (`report_load`); None: none, picks read engines.
        self._reports: tuple[float, Clock] | None = None

    def report_load(self, interval_s: float, clock: Clock) -> None:
        """Every instance, and every one started later, reports its load every `interval_s`."""
        self._reports = (interval_s, clock)
        for instance in self.instances:
            instance.report_load(interval_s, clock)

    def kv_index(self) -> KvBlockIndex:
        """The router's KV index over every instance's cache, added ones included."""
        return engine_caches_index(self.cores)

    # -- the router's view ----------------------------------------------------------

    def routable(self, role: Role) -> list[SimInstance]:
        return self._routable[role]

    def members(self, role: Role) -> frozenset[str]:
        return self._members[role]

    # -- scaling --------------------------------------------------------------------

    def start(self, role: Role, now_s: float) -> SimInstance:
        """A new instance, paid for from now, routable once `ready` is called."""
        number = self._next_number[role]
        self._next_number[role] = number + 1
        instance = SimInstance(f"{role}-{number}", role, EngineCore(self._config))
        if self._reports is not None:
            instance.report_load(*self._reports)
        self.instances.append(instance)
        self.cores[instance.worker_id] = instance.core
        self.lifetimes[instance.worker_id] = Lifetime(instance.worker_id, role, now_s)
        return instance

    def ready(self, instance: SimInstance, now_s: float) -> None:
        lifetime = self.lifetimes[instance.worker_id]
        if lifetime.drain_s is not None:
            return  # removed while starting: it never serves
        lifetime.ready_s = now_s
        self._routable[instance.role].append(instance)
        self._members[instance.role] = self._member_ids(instance.role)

    def provisioned(self, role: Role) -> tuple[int, int]:
        """(instances not draining, of which still starting)."""
        live = [
            life
            for life in self.lifetimes.values()
            if life.role is role and life.drain_s is None and life.end_s is None
        ]
        return len(live), sum(1 for life in live if life.ready_s is None)

    def remove(self, role: Role, now_s: float) -> SimInstance | None:
        """Drains one instance of `role`: a starting one first (it serves nobody yet),
        else the routable one with the least work in flight. None when none is left."""
        starting = [
            self._by_id(life.worker_id)
            for life in self.lifetimes.values()
            if life.role is role and life.ready_s is None and life.drain_s is None
        ]
        if starting:
            victim = starting[-1]
        else:
            candidates = self._routable[role]
            if not candidates:
                return None
            victim = min(candidates, key=lambda i: (i.endpoint().active.num_requests, i.worker_id))
            candidates.remove(victim)
            self._members[role] = self._member_ids(role)
        self.lifetimes[victim.worker_id].drain_s = now_s
        self._draining.add(victim.worker_id)
        self.retire_if_idle(victim, now_s)
        return victim

    def retire_if_idle(self, instance: SimInstance, now_s: float) -> bool:
        """Ends a draining instance once it holds no work (call after its events); True
        when it ended now."""
        if instance.worker_id not in self._draining or not instance.is_idle():
            return False
        self._draining.discard(instance.worker_id)
        self.lifetimes[instance.worker_id].end_s = now_s
        return True

    # -- helpers ----------------------------------------------------------------------

    def _member_ids(self, role: Role) -> frozenset[str]:
        return frozenset(i.worker_id for i in self._routable[role])

    def _by_id(self, worker_id: str) -> SimInstance:
        return next(i for i in self.instances if i.worker_id == worker_id)
