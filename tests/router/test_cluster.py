"""The cluster view's shared parts: ring membership per model and role, in-flight counts,
and each stage's reported queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from triskel.common.api import Role
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.cluster import ClusterView
from triskel.router.scheduling.candidates import Column
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import WorkerLoad
from triskel.router.state.kv_direct import KvEventCall
from triskel.router.state.memory import MemoryState
from triskel.router.state.protocols import LoadCounts
from triskel.router.worker_client import WorkerClient

from support.fake_workers import fake_worker
from support.waiting import wait_until

PREFILLS = [fake_worker(f"p{i}", Role.PREFILL) for i in range(3)]
DECODES = [fake_worker(f"d{i}", Role.DECODE) for i in range(2)]
OTHER_MODEL = [fake_worker("x0", Role.PREFILL, model="other")]


@pytest.mark.asyncio
async def test_ring_members_are_every_announced_worker_of_the_same_model_and_role() -> None:
    state = MemoryState()
    cluster = ClusterView([*PREFILLS, *DECODES, *OTHER_MODEL], KvBlockIndex(), state)
    await cluster.announce_workers()
    # A prefill worker only another replica reaches: on the rings all the same, so
    # every replica maps each prefix alike.
    await state.members.register("m/prefill", "p-remote")
    cluster.start()
    try:
        await wait_until(lambda: bool(cluster.ring_members(PREFILLS)))
        assert cluster.ring_members(PREFILLS) == {"p0", "p1", "p2", "p-remote"}
        assert cluster.ring_members(DECODES) == {"d0", "d1"}
        # A mixed list (encode falls back to unified workers) takes both roles' members.
        assert cluster.ring_members([PREFILLS[0], DECODES[0]]) == {
            "p0",
            "p1",
            "p2",
            "p-remote",
            "d0",
            "d1",
        }
        assert cluster.ring_members(OTHER_MODEL) == {"x0"}
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_in_flight_work_is_counted_while_the_block_runs_and_written_to_the_ledger() -> None:
    state = MemoryState()
    cluster = ClusterView(PREFILLS, KvBlockIndex(), state)
    with cluster.prefilling("p1", num_uncached_tokens=100):
        (endpoint,) = cluster.endpoints([PREFILLS[1]])
        assert (endpoint.active.num_requests, endpoint.active.num_prefill_tokens) == (1, 100)
        # An in-memory ledger is written at once, without a task per write.
        assert state.load.get("p1").num_prefill_tokens == 100
    (endpoint,) = cluster.endpoints([PREFILLS[1]])
    assert endpoint.active.num_requests == 0
    assert state.load.get("p1").is_zero
    await cluster.close()


@pytest.mark.asyncio
async def test_a_ledger_that_waits_on_io_is_written_beside_the_request() -> None:
    written: list[LoadCounts] = []
    released = asyncio.Event()

    class Remote:
        # A LoadLedger with `add` only, which waits, as Redis' does.
        async def add(self, worker_id: str, delta: LoadCounts) -> None:
            await released.wait()
            written.append(delta)

        async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
            return {}

        async def heartbeat(self) -> None:
            pass

    state = MemoryState()
    state.load = Remote()  # type: ignore[assignment]
    cluster = ClusterView(PREFILLS, KvBlockIndex(), state)
    with cluster.prefilling("p1", num_uncached_tokens=100):
        pass  # the block never waits for the ledger
    assert written == []
    released.set()
    await wait_until(lambda: len(written) == 2)
    assert written == [LoadCounts(1, 100, 0), LoadCounts(-1, -100, 0)]
    await cluster.close()


@pytest.mark.asyncio
async def test_each_stages_requests_are_summed_from_what_its_healthy_workers_report() -> None:
    loads = {"p0": (3, 1), "p1": (2, 2), "d0": (0, 9), "d1": (1, 5), "x0": (4, 0)}

    class Reporting(GrpcWorkerClient):
        async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
            waiting, running = loads[self.worker_id]
            yield WorkerLoad(num_waiting_requests=waiting, num_running_requests=running)
            await asyncio.Event().wait()  # the stream stays open

        def kv_events(self) -> KvEventCall:
            raise NotImplementedError

        @property
        def has_kv_events(self) -> bool:
            return False

    workers = []
    for fake in [*PREFILLS[:2], *DECODES, *OTHER_MODEL]:
        client = Reporting(fake.address)
        client._identity = fake.identity
        workers.append(client)
    cluster = ClusterView(workers, KvBlockIndex(), MemoryState())
    cluster.start()
    try:
        await wait_until(lambda: len(cluster.stage_requests()) == 3 and _all_reported(cluster))
        assert cluster.stage_requests() == {
            ("m", "prefill"): (5, 3),
            ("m", "decode"): (1, 14),
            ("other", "prefill"): (4, 0),
        }
        cluster.mark_unhealthy("d1")  # a worker whose call failed no longer counts
        assert cluster.stage_requests()[("m", "decode")] == (0, 9)
    finally:
        await cluster.close()


def _all_reported(cluster: ClusterView) -> bool:
    return sum(w + r for w, r in cluster.stage_requests().values()) == 27


class _Pausable(GrpcWorkerClient):
    """Reports its load (`load()`) every 10 ms while `reporting` is set; its stream stays
    open while it is not (a frozen worker's connection)."""

    def __init__(self, fake: WorkerClient, load: Callable[[], WorkerLoad] = WorkerLoad) -> None:
        super().__init__(fake.address)
        self._identity = fake.identity
        self._load = load
        self.reporting = asyncio.Event()
        self.reporting.set()

    async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        while True:
            await self.reporting.wait()
            yield self._load()
            await asyncio.sleep(0.01)

    def kv_events(self) -> KvEventCall:
        raise NotImplementedError

    @property
    def has_kv_events(self) -> bool:
        return False


@pytest.mark.asyncio
async def test_a_silent_worker_is_left_out_its_calls_ended_and_back_when_it_reports() -> None:
    d0, d1 = _Pausable(DECODES[0]), _Pausable(DECODES[1])
    cluster = ClusterView([d0, d1], KvBlockIndex(), MemoryState())
    ended: list[str] = []

    def end_calls(worker_id: str) -> int:
        ended.append(worker_id)
        return 0

    cluster.start()
    cluster.watch_silence(lambda model: 1.0, end_calls)
    try:
        await wait_until(lambda: len(cluster.endpoints([d0, d1])) == 2)
        d0.reporting.clear()  # frozen: no report, no error
        await wait_until(lambda: "d0" in ended)
        assert [e.worker_id for e in cluster.endpoints([d0, d1])] == ["d1"]
        assert set(ended) == {"d0"}
        d0.reporting.set()
        await wait_until(lambda: len(cluster.endpoints([d0, d1])) == 2)
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_a_stalled_router_does_not_call_its_workers_silent() -> None:
    workers = [_Pausable(DECODES[0]), _Pausable(DECODES[1])]
    cluster = ClusterView(workers, KvBlockIndex(), MemoryState())
    ended: list[str] = []
    num_checks = 0

    def bound_s(model: str) -> float:
        nonlocal num_checks
        num_checks += 1
        return 1.0

    def end_calls(worker_id: str) -> int:
        ended.append(worker_id)
        return 0

    cluster.start()
    cluster.watch_silence(bound_s, end_calls)
    try:
        await wait_until(lambda: len(cluster.endpoints(workers)) == 2)
        # The loop blocks for twice the silence bound, and the reports queued meanwhile
        # are read only after the next check (the order is the network's to choose).
        for worker in workers:
            worker.reporting.clear()
        stall_the_event_loop(2.0)
        checks_before = num_checks
        await wait_until(lambda: num_checks >= checks_before + len(workers))
        for worker in workers:
            worker.reporting.set()
        await wait_until(lambda: num_checks >= checks_before + 10 * len(workers))
        assert ended == []
        assert len(cluster.endpoints(workers)) == 2
    finally:
        await cluster.close()


def stall_the_event_loop(seconds: float) -> None:
    """Blocks the loop as a long GC pause or a starved CPU would: the workers report all
    along, the router cannot read it."""
    time.sleep(seconds)


@pytest.mark.asyncio
async def test_kept_candidates_read_every_change_and_are_rebuilt_when_health_changes() -> None:
    loads = {"p0": 3, "p1": 1, "p2": 0}

    def reported(worker_id: str) -> Callable[[], WorkerLoad]:
        return lambda: WorkerLoad(num_waiting_requests=loads[worker_id])

    workers = [_Pausable(fake, reported(fake.worker_id)) for fake in PREFILLS]
    cluster = ClusterView(workers, KvBlockIndex(), MemoryState())
    cluster.start()
    try:

        def waiting() -> list[float]:
            values: list[float] = cluster.candidates(workers).column(Column.WAITING).tolist()
            return values

        await wait_until(lambda: waiting() == [3, 1, 0])
        kept = cluster.candidates(workers)
        assert cluster.candidates(workers) is kept  # nothing built again per pick
        loads["p1"] = 7  # a load report: the same kept candidates read it at the next pick
        await wait_until(lambda: waiting() == [3, 7, 0])
        assert cluster.candidates(workers) is kept
        with cluster.prefilling("p2", num_uncached_tokens=64):  # this router's own work
            assert cluster.candidates(workers) is kept
            assert kept[2].active.num_prefill_tokens == 64
            assert kept.column(Column.ACTIVE_PREFILL_TOKENS).tolist() == [0, 0, 64]
        assert cluster.candidates(workers) is kept
        assert kept.column(Column.ACTIVE_PREFILL_TOKENS).tolist() == [0, 0, 0]
        # A retry leaves out the worker that failed: those candidates only.
        assert cluster.candidates(workers, exclude={"p0"}).worker_ids == ("p1", "p2")
        cluster.mark_unhealthy("p1")  # health changed: who is picked from changed
        assert cluster.candidates(workers).worker_ids == ("p0", "p2")
        assert cluster.candidates(workers) is not kept
        await wait_until(lambda: cluster.candidates(workers).worker_ids == ("p0", "p1", "p2"))
        # Discovery replaced the list: candidates follow the new one.
        assert cluster.candidates(workers[:2]).worker_ids == ("p0", "p1")
        assert cluster.candidates([]).worker_ids == ()
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_requests_sent_since_a_workers_last_report_are_counted_until_its_next() -> None:
    worker = _Pausable(PREFILLS[0])
    cluster = ClusterView([worker], KvBlockIndex(), MemoryState())
    cluster.start()
    try:
        await wait_until(lambda: cluster.candidates([worker]).worker_ids == ("p0",))
        worker.reporting.clear()  # no report until we say
        await asyncio.sleep(0.03)
        with cluster.prefilling("p0", num_uncached_tokens=40):  # 3 blocks of 16
            pass
        with cluster.decoding("p0", num_blocks=5):
            pass
        (endpoint,) = cluster.endpoints([worker])
        # Both finished, but the worker has not reported since: its report misses them.
        assert endpoint.active.num_requests == 0
        assert endpoint.active.num_unreported_requests == 2
        assert endpoint.active.num_unreported_blocks == 8
        kept = cluster.candidates([worker])
        assert kept.column(Column.UNREPORTED_REQUESTS).tolist() == [2]
        worker.reporting.set()  # a report: it counts them now
        await wait_until(
            lambda: cluster.candidates([worker]).column(Column.UNREPORTED_REQUESTS).tolist() == [0]
        )
        assert cluster.endpoints([worker])[0].active.num_unreported_blocks == 0
    finally:
        await cluster.close()
