"""One simulated instance: steps on demand, busy time, KV events into the index, endpoints."""

from __future__ import annotations

import pytest

from triskel.common.api import Role
from triskel.common.hashing import hash_blocks
from triskel.common.latency import step_ms
from triskel.common.profiles import load_profile
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.simulator.cache_view import CachedBlocksView
from triskel.simulator.instance import SimInstance, report_phase_s
from triskel.workers.engine.core import EngineConfig, EngineCore, EngineRequest

PROFILE = load_profile("llama-3.1-8b-h100")
PROMPT = list(range(64))


def _instance() -> SimInstance:
    core = EngineCore(EngineConfig.from_profile(PROFILE, kv_capacity_tokens=1600))
    return SimInstance("unified-0", Role.UNIFIED, core)


def test_idle_instance_without_work_does_not_step() -> None:
    instance = _instance()
    assert instance.start_step() is None
    assert not instance.is_busy


def test_step_runs_modelled_time_and_delivers_at_finish() -> None:
    instance = _instance()
    instance.add(EngineRequest("r0", PROMPT, max_tokens=1, ignore_eos=True))
    started = instance.start_step()
    assert started is not None
    # One 64-token prefill from an empty cache: the latency model's (64 new, 0 before) chunk.
    assert started.duration_s == pytest.approx(step_ms(PROFILE, [(64, 0)], []) / 1000)
    # A second step cannot start while one runs (one GPU, one forward pass at a time).
    assert instance.is_busy and instance.start_step() is None
    outputs = instance.finish_step()
    assert [o.request_id for o in outputs] == ["r0"]
    assert instance.busy_s == pytest.approx(started.duration_s)


def test_the_routers_index_sees_the_blocks_a_step_cached() -> None:
    instance = _instance()
    index = KvBlockIndex(CachedBlocksView({instance.worker_id: instance.core}))
    instance.add(EngineRequest("r0", PROMPT, max_tokens=1, ignore_eos=True))
    instance.start_step()
    hashes = hash_blocks(PROMPT, 16, PROFILE.model)
    # All four full 16-token blocks were cached by the step, and the index says so.
    assert index.match_lengths(hashes, ["unified-0"]) == [4]


def test_endpoint_reports_engine_load_and_router_counts() -> None:
    instance = _instance()
    instance.add(EngineRequest("r0", PROMPT, max_tokens=8, ignore_eos=True))
    instance.add_active(1, 64, 0)
    endpoint = instance.endpoint()
    assert endpoint.worker_id == "unified-0"
    assert endpoint.block_size_tokens == 16
    assert endpoint.load.num_waiting_requests == 1
    assert endpoint.active.num_requests == 1
    assert endpoint.active.num_prefill_tokens == 64
    assert endpoint.profile == PROFILE
    # The endpoint is rebuilt after a change, not served stale.
    instance.add_active(-1, -64, 0)
    assert instance.endpoint().active.num_requests == 0


def test_finish_without_a_running_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="no step is running"):
        _instance().finish_step()


class _Clock:
    def __init__(self) -> None:
        self.now_s = 0.0


def _reporting(interval_s: float = 0.05) -> tuple[SimInstance, _Clock, float]:
    """An instance reporting every `interval_s`, and the time of its first report after 0."""
    clock = _Clock()
    instance = _instance()
    instance.report_load(interval_s, clock)
    # Its phase is its own (fixed by its id): reports at phase, phase + interval, ...
    phase_s = report_phase_s(instance.worker_id, interval_s)
    return instance, clock, phase_s or interval_s


def test_picks_read_the_last_report_until_the_next_one() -> None:
    instance, clock, first_report_s = _reporting()
    clock.now_s = first_report_s / 2
    instance.add(EngineRequest("r0", PROMPT, max_tokens=8, ignore_eos=True))
    instance.add_active(1, 64, 0)
    endpoint = instance.endpoint()
    # The engine has a request waiting, but the last report (at start) said none.
    assert endpoint.load.num_waiting_requests == 0
    # The router's own counts are current, and say what the report cannot: one sent since.
    assert endpoint.active.num_requests == 1
    assert endpoint.active.num_unreported_requests == 1
    assert endpoint.active.num_unreported_blocks == 4  # 64 uncached tokens, 16 a block
    clock.now_s = first_report_s
    endpoint = instance.endpoint()
    assert endpoint.load.num_waiting_requests == 1
    assert endpoint.active.num_unreported_requests == 0
    assert endpoint.active.num_unreported_blocks == 0


def test_a_report_holds_the_state_at_its_time_not_at_the_next_read() -> None:
    instance, clock, first_report_s = _reporting()
    instance.add(EngineRequest("r0", PROMPT, max_tokens=8, ignore_eos=True))
    # The step starts after the report time, before anyone reads the endpoint: the report
    # taken at first_report_s still shows r0 waiting, as the engine was then.
    clock.now_s = first_report_s + 0.001
    assert instance.start_step() is not None
    endpoint = instance.endpoint()
    assert endpoint.load.num_waiting_requests == 1
    assert endpoint.load.num_running_requests == 0
    # The next report sees it running.
    clock.now_s = first_report_s + 0.051
    assert instance.endpoint().load.num_running_requests == 1


def test_a_decode_sent_counts_its_pulled_blocks_as_unreported() -> None:
    instance, _, _ = _reporting()
    instance.add_active(1, 0, 7)
    assert instance.endpoint().active.num_unreported_blocks == 7
    # Finishing does not uncount it: the report still has not seen it.
    instance.add_active(-1, 0, -7)
    assert instance.endpoint().active.num_unreported_requests == 1


def test_report_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        _instance().report_load(0.0, _Clock())
