"""One worker of `triskel up`'s pools: its state, the settings of its life, and the
waits `LocalPools` makes on its process and events."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from triskel.cli.supervisor import Child, RestartBackoff
from triskel.cli.up_config import PoolEntry
from triskel.common.api import WorkerPoolSpec
from triskel.router.discovery.membership import MEMBERSHIP_POLL_S
from triskel.workers.process import WorkerProcessConfig


@dataclass(frozen=True, slots=True)
class PoolSettings:
    # The worker's own drain on SIGTERM (WorkerProcessConfig.drain_timeout_s).
    worker_drain_timeout_s: float
    # Longest wait for a leaving worker's requests to end before it is stopped anyway
    # (the operator's default drain timeout).
    drain_timeout_s: float = 120.0
    # Between leaving the membership file and the first look at the worker's work: the
    # router re-reads the file every MEMBERSHIP_POLL_S; a few polls cover a busy loop.
    router_notice_s: float = 4 * MEMBERSHIP_POLL_S
    restart: RestartBackoff = field(default_factory=RestartBackoff)
    ready_timeout_s: float = 120.0
    # The run's KV auth key, given to every worker (WorkerProcessConfig.kv_auth_key_file).
    kv_auth_key_file: str | None = None


@dataclass(frozen=True, slots=True)
class ReplicaCounts:
    ready: int  # serving
    # Starting, waiting to be started again after a failure, or switching in from the
    # other stage (drain and role change under way).
    starting: int

    @property
    def provisioned(self) -> int:
        return self.ready + self.starting


@dataclass(slots=True, eq=False)
class LocalWorker:
    name: str
    pool: PoolEntry
    failures: int  # consecutive failures of the workers this one replaces
    leaving: asyncio.Event = field(default_factory=asyncio.Event)
    # Set while the worker changes role: `pool` is already the pool it joins.
    switching: asyncio.Event = field(default_factory=asyncio.Event)
    switch_from: PoolEntry | None = None
    child: Child | None = None
    ready_at_s: float = 0.0

    @property
    def is_serving(self) -> bool:
        child = self.child
        alive = child is not None and child.process.returncode is None
        return alive and not self.is_leaving and not self.is_switching

    @property
    def is_starting(self) -> bool:
        return self.child is None and not self.is_leaving

    @property
    def is_switching(self) -> bool:
        return self.switching.is_set() and not self.is_leaving

    @property
    def is_active(self) -> bool:
        """Counts toward its pool's size: serving, or on its way to serve."""
        return self.is_serving or self.is_starting or self.is_switching

    @property
    def is_leaving(self) -> bool:
        return self.leaving.is_set()


def worker_config(
    pool: PoolEntry, worker_id: str, drain_timeout_s: float, kv_auth_key_file: str | None = None
) -> WorkerProcessConfig:
    spec = WorkerPoolSpec.model_validate(pool.model_dump(exclude={"name"}))
    return WorkerProcessConfig(
        worker_id=worker_id,
        pool=spec,
        drain_timeout_s=drain_timeout_s,
        kv_auth_key_file=kv_auth_key_file,
    )


def now() -> float:
    return asyncio.get_running_loop().time()


async def first(*waits: Coroutine[Any, Any, object]) -> None:
    """Waits until the first of the coroutines ends; cancels the others."""
    tasks = [asyncio.create_task(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def waits_for(event: asyncio.Event, timeout_s: float) -> bool:
    """Waits up to `timeout_s` for `event`; True when it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


async def waits_for_exit(child: Child, timeout_s: float) -> bool:
    """Waits up to `timeout_s` for the process to exit; True when it did."""
    try:
        await asyncio.wait_for(asyncio.shield(child.process.wait()), timeout_s)
    except TimeoutError:
        return False
    return True
