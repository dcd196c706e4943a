"""The fleet of an autoscaled run: starting, ready, draining, gone."""

from __future__ import annotations

from triskel.common.api import Role
from triskel.simulator.cluster import ClusterShape, build_cluster
from triskel.simulator.fleet import Fleet
from triskel.workers.engine.core import EngineRequest


def fleet(prefill: int = 1, decode: int = 2) -> Fleet:
    cluster = build_cluster(ClusterShape(num_prefill=prefill, num_decode=decode))
    return Fleet(cluster.instances, cluster.instances[0].core.config)


def test_a_started_instance_serves_only_once_ready() -> None:
    pool = fleet()
    added = pool.start(Role.DECODE, now_s=10.0)
    assert added.worker_id == "decode-2"
    assert added not in pool.routable(Role.DECODE)
    assert pool.provisioned(Role.DECODE) == (3, 1)  # paid for, not serving
    pool.ready(added, now_s=70.0)
    assert added in pool.routable(Role.DECODE)
    assert "decode-2" in pool.members(Role.DECODE)
    assert pool.provisioned(Role.DECODE) == (3, 0)
    assert pool.lifetimes["decode-2"].start_s == 10.0
    assert pool.lifetimes["decode-2"].ready_s == 70.0
    # Its cache is in the router's KV index from the start.
    assert "decode-2" in pool.cores


def test_removal_takes_a_starting_instance_first_and_it_never_serves() -> None:
    pool = fleet()
    added = pool.start(Role.DECODE, now_s=0.0)
    assert pool.remove(Role.DECODE, now_s=5.0) is added
    assert pool.lifetimes[added.worker_id].end_s == 5.0  # idle: gone at once
    pool.ready(added, now_s=60.0)  # its start-up ends after the removal
    assert added not in pool.routable(Role.DECODE)
    assert pool.provisioned(Role.DECODE) == (2, 0)


def test_a_drained_instance_stops_getting_work_and_ends_when_empty() -> None:
    pool = fleet(decode=2)
    busy, idle = pool.routable(Role.DECODE)
    busy.add_active(1, 0, 4)
    busy.add(EngineRequest("r1", [1, 2, 3], 2, ignore_eos=True))
    # The instance with the least work in flight goes first.
    assert pool.remove(Role.DECODE, now_s=1.0) is idle
    assert pool.lifetimes[idle.worker_id].end_s == 1.0
    assert pool.remove(Role.DECODE, now_s=2.0) is busy
    assert pool.routable(Role.DECODE) == []
    pool.retire_if_idle(busy, now_s=3.0)
    assert pool.lifetimes[busy.worker_id].end_s is None  # still holds its request
    while busy.core.has_unfinished_work():
        busy.start_step()
        busy.finish_step()
    busy.add_active(-1, 0, -4)
    pool.retire_if_idle(busy, now_s=4.0)
    assert pool.lifetimes[busy.worker_id].end_s == 4.0
    assert pool.remove(Role.DECODE, now_s=5.0) is None  # nothing left to drain
