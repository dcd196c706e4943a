"""`triskel up`'s pools as worker processes that come and go while the router serves.

Each worker is a task that follows one process through its life:

    starting ──ready──► serving ──scale(pool, fewer)──► leaving ──► stopped
       │                 │  ▲  │                          1. out of the membership file
       │                 │  │  │                          2. the router notices (a few polls)
       │                 │  │  │                          3. wait until nothing is in flight
       │                 │  │  │                             (bounded), then SIGTERM: the
       │                 │  │  │                             worker's own drain covers the rest
       │                 │  │  └─switch(pool, other)──► switching: out of the file, the
       │                 │  │                           router notices, the worker drains
       │                 │  └──── rejoins in `other` ◄─ and changes role (SwitchRole)
       │                 └─exits on its own──► replaced by a new worker after a backoff
       └─fails to start─────────────────────────► replaced the same way

The membership file (`triskel.common.local_membership`) lists every serving worker's
gRPC address by pool; the router re-reads it and joins or drains workers as they
appear and vanish. A replacement gets a new name (`decode-4` for `decode-1`): the
router's per-worker state of the dead one must never be mistaken for the new one's.
A worker that changes role keeps its name and process: the router sees it leave one
pool and, once it has drained and switched, join the other as a new member.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from triskel.cli.local_worker import (
    LocalWorker,
    PoolSettings,
    ReplicaCounts,
    first,
    now,
    waits_for,
    waits_for_exit,
    worker_config,
)
from triskel.cli.supervisor import Child, ChildFailedError, Supervisor
from triskel.cli.up_config import PoolEntry
from triskel.cli.worker_role import RoleSwitchError, switch_role
from triskel.common.local_membership import LocalMembership, LocalPool, write_membership
from triskel.common.worker_load import worker_load

_log = logging.getLogger(__name__)

Print = Callable[[str], None]
_DRAIN_POLL_S = 0.25


class LocalPools:
    """Owns the worker processes of every pool (through `supervisor`) and the
    membership file; starts, replaces and drains workers one at a time."""

    def __init__(
        self,
        supervisor: Supervisor,
        pools: Sequence[PoolEntry],
        membership_path: Path,
        say: Print,
        settings: PoolSettings,
    ) -> None:
        self._supervisor = supervisor
        self._pools = {pool.name: pool for pool in pools}
        self._membership_path = membership_path
        self._say = say
        self._settings = settings
        self._workers: list[LocalWorker] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_index = dict.fromkeys(self._pools, 0)
        self._published: LocalMembership | None = None
        self._closing = False

    @property
    def membership_path(self) -> Path:
        return self._membership_path

    async def start(self) -> list[Child]:
        """Starts every pool at its size and waits until all serve; ChildFailedError if
        one cannot (a broken deployment stops `up` rather than retrying forever)."""
        workers = [
            self._new_worker(pool, failures=0)
            for pool in self._pools.values()
            for _ in range(pool.replicas.count)
        ]
        self._publish()  # an empty but valid file, before anything reads it
        starts = [asyncio.create_task(self._start_child(w)) for w in workers]
        try:
            children = await asyncio.gather(*starts)
        except BaseException:
            for start in starts:  # the others stop too (each stops its own process)
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)
            raise
        for worker, child in zip(workers, children, strict=True):
            self._launch(worker, child)
        self._publish()
        return children

    def counts(self, pool: str) -> ReplicaCounts:
        """A worker switching into the pool counts as starting there."""
        workers = self._of(pool)
        return ReplicaCounts(
            ready=sum(w.is_serving for w in workers),
            starting=sum(w.is_starting or w.is_switching for w in workers),
        )

    def endpoints(self, pool: str) -> list[str]:
        """The gRPC addresses of the pool's serving workers (what the router is given)."""
        return [str(w.child.ready["grpc"]) for w in self._of(pool) if w.is_serving and w.child]

    def children(self, pool: str) -> list[Child]:
        """The pool's live worker processes, leaving ones included."""
        return [w.child for w in self._of(pool) if w.child and w.child.process.returncode is None]

    def scale(self, pool: str, desired: int) -> None:
        """Starts or drains workers until `desired` are serving or starting; returns at
        once. The pool's replicas.min / max bound `desired`, whoever asks."""
        spec = self._pools[pool]
        desired = min(max(desired, spec.replicas.min), spec.replicas.max)
        active = [w for w in self._of(pool) if w.is_active]
        for _ in range(desired - len(active)):
            worker = self._new_worker(spec, failures=0)
            self._say(f"scale {pool}: starting {worker.name}")
            self._launch(worker, None)
        # Workers not yet serving go first (nothing to drain), then the newest.
        surplus = sorted(active, key=lambda w: (w.is_serving, -self._workers.index(w)))
        for worker in surplus[: max(0, len(active) - desired)]:
            worker.leaving.set()
            if worker.child is not None:
                self._say(f"scale {pool}: draining {worker.name} (the router stops sending)")
        self._publish()

    def switch(self, donor: str, receiver: str, count: int) -> int:
        """Moves up to `count` of `donor`'s serving workers (the newest first) to
        `receiver`: each drains, changes role and rejoins; returns at once with how
        many go. The donor's replicas.min and the receiver's replicas.max bound it."""
        give, take = self._pools[donor], self._pools[receiver]
        serving = [w for w in self._of(donor) if w.is_serving]
        donor_active = sum(w.is_active for w in self._of(donor))
        receiver_active = sum(w.is_active for w in self._of(receiver))
        count = min(
            count,
            len(serving),
            donor_active - give.replicas.min,
            take.replicas.max - receiver_active,
        )
        for worker in sorted(serving, key=self._workers.index, reverse=True)[: max(0, count)]:
            worker.switch_from, worker.pool = worker.pool, take
            worker.switching.set()
            self._say(f"switch {donor} -> {receiver}: {worker.name} drains, then changes role")
        self._publish()
        return max(0, count)

    async def close(self) -> None:
        """Stops every worker at once, without draining (the router is gone first)."""
        self._closing = True  # no replacement starts from here on
        alive = [w.child for w in self._workers if w.child is not None]
        tasks = list(self._tasks)
        for task in tasks:  # a worker still starting stops its own process
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(self._supervisor.stop(child) for child in alive))
        self._workers.clear()

    # -- one worker's life ------------------------------------------------------------

    def _new_worker(self, pool: PoolEntry, failures: int) -> LocalWorker:
        index = self._next_index[pool.name]
        self._next_index[pool.name] = index + 1
        worker = LocalWorker(f"{pool.name}-{index}", pool, failures)
        self._workers.append(worker)
        return worker

    def _launch(self, worker: LocalWorker, child: Child | None, delay_s: float = 0.0) -> None:
        if self._closing:
            self._workers.remove(worker)
            return
        task = asyncio.create_task(self._live(worker, child, delay_s), name=worker.name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("worker %s: supervision failed", task.get_name(), exc_info=task.exception())

    async def _live(self, worker: LocalWorker, child: Child | None, delay_s: float) -> None:
        try:
            if child is None:
                child = await self._start_later(worker, delay_s)
                if child is None:
                    return
                self._say(f"  {worker.name:<12} ready: grpc {child.ready['grpc']}")
            worker.child, worker.ready_at_s = child, now()
            self._publish()
            while True:
                await first(child.process.wait(), worker.leaving.wait(), worker.switching.wait())
                if worker.is_leaving:
                    await self._drain_and_stop(worker, child)
                    return
                if child.process.returncode is not None:
                    code = child.process.returncode
                    await self._supervisor.stop(child)  # forget it (it has exited)
                    self._replace(worker, f"exited with code {code}", now() - worker.ready_at_s)
                    return
                await self._switch_role(worker, child)
        finally:
            self._workers.remove(worker)
            self._publish()

    async def _start_later(self, worker: LocalWorker, delay_s: float) -> Child | None:
        """The worker's process once ready; None when it left first or failed (then a
        replacement is on its way)."""
        if delay_s > 0 and await waits_for(worker.leaving, delay_s):
            return None
        try:
            child = await self._start_child(worker)
        except ChildFailedError as error:
            if not worker.is_leaving:
                self._replace(worker, f"failed to start ({error})", served_s=0.0)
            return None
        if worker.is_leaving:  # scaled in while starting: it never served
            await self._supervisor.stop(child)
            return None
        return child

    async def _start_child(self, worker: LocalWorker) -> Child:
        settings = self._settings
        config = worker_config(
            worker.pool, worker.name, settings.worker_drain_timeout_s, settings.kv_auth_key_file
        )
        return await self._supervisor.start(
            worker.name,
            "worker",
            config.model_dump(mode="json", by_alias=True),
            ready_timeout_s=self._settings.ready_timeout_s,
        )

    def _replace(self, worker: LocalWorker, why: str, served_s: float) -> None:
        backoff = self._settings.restart
        failures = backoff.failures_after(worker.failures, served_s)
        delay_s = backoff.delay_s(failures)
        successor = self._new_worker(worker.pool, failures)
        self._say(
            f"restart {worker.pool.name}: {worker.name} {why}; starting {successor.name} in "
            f"{delay_s:.1f} s (failure {failures} in a row)"
        )
        self._launch(successor, None, delay_s)

    async def _switch_role(self, worker: LocalWorker, child: Child) -> None:
        """Out of the donor's membership, the router notices, the worker drains and
        switches; it then serves in its new pool, or back in the donor's if it could
        not switch (the next decision starts a replica instead)."""
        donor, receiver = worker.switch_from or worker.pool, worker.pool
        self._publish()
        try:
            if await waits_for_exit(child, self._settings.router_notice_s):
                return  # it died: the caller replaces it in its new pool
            address = str(child.ready["grpc"])
            try:
                waited_s = await switch_role(address, receiver.role, self._settings.drain_timeout_s)
            except RoleSwitchError as error:
                worker.pool = donor
                self._say(
                    f"switch {donor.name} -> {receiver.name}: {worker.name} stays in "
                    f"{donor.name}: {error}"
                )
            else:
                self._say(
                    f"switch {donor.name} -> {receiver.name}: {worker.name} serves as "
                    f"{receiver.role} (drained in {waited_s:.1f} s, no restart)"
                )
        finally:
            worker.switch_from = None
            worker.switching.clear()
            self._publish()

    async def _drain_and_stop(self, worker: LocalWorker, child: Child) -> None:
        self._publish()
        address = str(child.ready["grpc"])
        # Requests the router picked this worker for before it re-read the file still
        # arrive for a moment: wait for them to land before counting what is in flight.
        if await waits_for_exit(child, self._settings.router_notice_s):
            await self._supervisor.stop(child)
            code = child.process.returncode
            self._say(f"scale {worker.pool.name}: {worker.name} exited (code {code}) as it left")
            return
        loop = asyncio.get_running_loop()
        deadline_s = loop.time() + self._settings.drain_timeout_s
        drained = True
        while child.process.returncode is None:
            load = await worker_load(address)
            if load is None or load.num_in_flight == 0:
                break
            if loop.time() >= deadline_s:
                drained = False
                break
            await asyncio.sleep(_DRAIN_POLL_S)
        await self._supervisor.stop(child)
        if drained:
            self._say(f"scale {worker.pool.name}: {worker.name} drained and stopped")
        else:
            limit_s = self._settings.drain_timeout_s
            self._say(
                f"scale {worker.pool.name}: {worker.name} stopped with work in flight "
                f"after the {limit_s:.0f} s drain limit"
            )

    # -- the membership file ----------------------------------------------------------

    def _of(self, pool: str) -> list[LocalWorker]:
        return [w for w in self._workers if w.pool.name == pool]

    def _publish(self) -> None:
        membership = LocalMembership(
            pools=[
                LocalPool(
                    name=pool.name,
                    role=pool.role,
                    model=pool.model,
                    engine=pool.engine.type,
                    endpoints=sorted(self.endpoints(pool.name)),
                )
                for pool in self._pools.values()
            ]
        )
        if membership != self._published:
            write_membership(self._membership_path, membership)
            self._published = membership
