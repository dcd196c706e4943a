"""A request's flight: router-side load charges and its final record."""

from __future__ import annotations

from triskel.common.api import Role
from triskel.common.profiles import load_profile
from triskel.simulator.flight import Flight
from triskel.simulator.instance import SimInstance
from triskel.traces.types import TraceRequest
from triskel.workers.engine.core import EngineConfig, EngineCore

PROFILE = load_profile("llama-3.1-8b-h100")


def _instance(worker_id: str) -> SimInstance:
    config = EngineConfig.from_profile(PROFILE, kv_capacity_tokens=1600)
    return SimInstance(worker_id, Role.PREFILL, EngineCore(config))


def _flight() -> Flight:
    request = TraceRequest(1.5, 100, 10, (), 0, None, index=7)
    return Flight(request, position=0, arrival_s=1.5, prompt_token_ids=[1] * 100, block_hashes=[])


def test_charges_are_removed_per_instance_and_at_close() -> None:
    prefill, decode = _instance("p"), _instance("d")
    flight = _flight()
    flight.charge(prefill, 100, 0)
    flight.charge(decode, 0, 7)
    assert prefill.endpoint().active.num_prefill_tokens == 100
    flight.discharge(prefill)
    assert prefill.endpoint().active.num_requests == 0
    assert decode.endpoint().active.num_decode_blocks == 7
    flight.close(finish_s=3.0)
    assert decode.endpoint().active.num_requests == 0


def test_record_carries_times_workers_and_bytes() -> None:
    flight = _flight()
    flight.prefill, flight.decode = _instance("p"), _instance("d")
    flight.first_token_s = 2.0
    flight.num_cached_tokens = 32
    flight.kv_bytes_moved = 999
    record = flight.close(finish_s=4.0)
    assert flight.request_id == "r7"
    assert (record.index, record.ttft_s, record.finish_s) == (7, 0.5, 4.0)
    assert (record.prefill_worker, record.decode_worker) == ("p", "d")
    assert (record.num_cached_tokens, record.kv_bytes_moved) == (32, 999)
    # The prompt is dropped at close: finished requests must not hold 12k-token lists.
    assert flight.prompt_token_ids == []


def test_failed_request_has_no_finish() -> None:
    record = _flight().close(finish_s=None)
    assert not record.is_finished
