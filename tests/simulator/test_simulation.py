"""The request flows on the virtual clock: unified, disaggregated, conditional, prefix hits.

Expected times come from the latency model itself (`step_ms`), the same function
the engine's model runner prices its steps with, so each test states which
steps a request went through.
"""

from __future__ import annotations

import pytest

from triskel.common.latency import step_ms
from triskel.common.profiles import load_profile
from triskel.common.routing_api import RoutingSettings
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.run import simulate
from triskel.simulator.transfer import TransferModel
from triskel.traces.types import Trace, TraceRequest

PROFILE = load_profile("llama-3.1-8b-h100")
KV_BYTES_PER_TOKEN = PROFILE.geometry.kv_bytes_per_token


def _request(index: int, arrival_s: float, num_input: int, num_output: int) -> TraceRequest:
    # Two 512-token blocks named 1 and 2: every such request has the same first 1,024 tokens.
    return TraceRequest(arrival_s, num_input, num_output, (1, 2), 512, None, index)


def _trace(*requests: TraceRequest) -> Trace:
    return Trace("test", "test", requests)


def _prefill_s(num_new: int, num_before: int = 0) -> float:
    return step_ms(PROFILE, [(num_new, num_before)], []) / 1000


def test_one_request_on_an_idle_instance_takes_the_modelled_prefill() -> None:
    result = simulate(
        _trace(_request(0, 0.0, 1024, 1)), ClusterShape(num_unified=1), RoutingSettings()
    )
    (record,) = result.requests
    # 1,024 tokens fit one step's 8,192-token budget: TTFT is one prefill of 1,024 new
    # tokens on an empty cache, a + b*1024 + c*1024^2 = 56.8 ms for this profile.
    assert record.ttft_s == pytest.approx(_prefill_s(1024))
    assert record.ttft_s == pytest.approx(0.0568, abs=1e-4)
    assert (record.prefill_worker, record.decode_worker) == ("unified-0", "unified-0")
    assert record.num_cached_tokens == 0 and record.kv_bytes_moved == 0


def test_repeated_prompt_hits_the_prefix_cache() -> None:
    trace = _trace(_request(0, 0.0, 1024, 4), _request(1, 10.0, 1024, 4))
    first, second = simulate(trace, ClusterShape(num_unified=1), RoutingSettings()).requests
    # The engine reuses every full block but the one holding the last prompt token
    # ((1024 - 1) // 16 = 63 blocks), so it prefills only the last 16 tokens.
    assert second.num_cached_tokens == 63 * 16
    assert second.ttft_s == pytest.approx(_prefill_s(16, 1008))
    assert second.ttft_s is not None and first.ttft_s is not None
    assert second.ttft_s < first.ttft_s


def test_disaggregated_request_moves_its_kv_before_decoding() -> None:
    transfer = TransferModel(bandwidth_bytes_per_s=10e9, latency_s=1e-3)
    shape = ClusterShape(num_prefill=1, num_decode=1)
    result = simulate(
        _trace(_request(0, 0.0, 1024, 2)), shape, RoutingSettings(), transfer=transfer
    )
    (record,) = result.requests
    moved = 1024 * KV_BYTES_PER_TOKEN
    assert record.kv_bytes_moved == moved
    assert (record.prefill_worker, record.decode_worker) == ("prefill-0", "decode-0")
    # The router streams the prefill's first token at once (router/flows.py), so TTFT
    # is the prefill alone; the transfer delays the second token: pull, then one decode
    # step over 1,025 tokens of context.
    assert record.ttft_s == pytest.approx(_prefill_s(1024))
    decode_s = step_ms(PROFILE, [], [1025]) / 1000
    assert record.finish_s == pytest.approx(_prefill_s(1024) + transfer.seconds(moved) + decode_s)
    busy = {i.worker_id: i.busy_s for i in result.instances}
    assert busy == pytest.approx({"prefill-0": _prefill_s(1024), "decode-0": decode_s})


def test_one_token_answer_never_reaches_decode() -> None:
    shape = ClusterShape(num_prefill=1, num_decode=1)
    (record,) = simulate(_trace(_request(0, 0.0, 1024, 1)), shape, RoutingSettings()).requests
    assert record.is_finished and record.decode_worker is None and record.kv_bytes_moved == 0


@pytest.mark.parametrize(
    ("mode", "num_input", "expected_prefill_worker"),
    [
        # Conditional: 256 uncached tokens < 512, cheaper to recompute on the decode worker.
        ("conditional", 256, "decode-0"),
        # Conditional: 1,024 uncached tokens >= 512, worth a prefill worker and a transfer.
        ("conditional", 1024, "prefill-0"),
        # Never: every prompt prefills on its decode worker, however long.
        ("never", 1024, "decode-0"),
        ("always", 256, "prefill-0"),
    ],
)
def test_disaggregation_modes(mode: str, num_input: int, expected_prefill_worker: str) -> None:
    routing = RoutingSettings.model_validate(
        {"disaggregation": {"mode": mode, "maxLocalPrefillTokens": 512}}
    )
    shape = ClusterShape(num_prefill=1, num_decode=1)
    (record,) = simulate(_trace(_request(0, 0.0, num_input, 3)), shape, routing).requests
    assert record.is_finished
    assert record.prefill_worker == expected_prefill_worker
    assert record.decode_worker == "decode-0"
    is_local = expected_prefill_worker == "decode-0"
    assert (record.kv_bytes_moved == 0) == is_local


def test_prompt_beyond_the_context_fails_alone() -> None:
    too_long = TraceRequest(0.0, PROFILE.max_context_tokens + 1, 2, (), 0, None, 0)
    fine = _request(1, 0.0, 1024, 2)
    failed, done = simulate(
        _trace(too_long, fine), ClusterShape(num_unified=1), RoutingSettings()
    ).requests
    assert not failed.is_finished and failed.first_token_s is None
    assert done.is_finished


def test_adaptive_mode_prefills_on_the_decode_instance_while_the_prefill_one_is_queued() -> None:
    # Three 8,000-token prompts arrive together on one prefill + one decode instance.
    # The first goes to the idle prefill instance (ties go to the prefill pool); the
    # second finds 8,000 tokens queued there and an idle decode instance, so it
    # prefills locally; the third finds both queued alike and returns to the prefill pool.
    routing = RoutingSettings.model_validate(
        {"disaggregation": {"mode": "adaptive", "maxLocalPrefillTokens": 512}}
    )
    requests = [TraceRequest(0.0, 8000, 4, (10 + n,), 8000, None, n) for n in range(3)]
    shape = ClusterShape(num_prefill=1, num_decode=1)
    records = simulate(_trace(*requests), shape, routing).requests
    assert [r.prefill_worker for r in records] == ["prefill-0", "decode-0", "prefill-0"]
    assert all(r.is_finished for r in records)
    assert records[1].kv_bytes_moved == 0 and records[0].kv_bytes_moved > 0


@pytest.mark.parametrize(("max_held", "expected"), [(0, "prefill-0"), (8, "prefill-1")])
def test_a_held_prefill_moves_off_a_hotspot(max_held: int, expected: str) -> None:
    # Round-robin sends a 30,000-token prompt to prefill-0 and a 9,000-token one to
    # prefill-1; both are then busy (a step's budget, 8,192 tokens, queued). The third
    # prompt is picked for prefill-0: without a hold it queues there behind 30,000
    # tokens; held, it moves to its runner-up, prefill-1, behind only 9,000, and goes
    # there once prefill-1 has room.
    routing = RoutingSettings.model_validate({"prefillHold": {"maxPerWorker": max_held}})
    requests = [
        TraceRequest(0.0, 30_000, 2, (20,), 30_000, None, 0),
        TraceRequest(0.0, 9000, 2, (21,), 9000, None, 1),
        TraceRequest(0.0, 9000, 2, (22,), 9000, None, 2),
    ]
    shape = ClusterShape(num_prefill=2, num_decode=1)
    records = simulate(_trace(*requests), shape, routing).requests
    assert [r.prefill_worker for r in records] == ["prefill-0", "prefill-1", expected]
    assert all(r.is_finished for r in records)


def test_a_held_prefill_the_engine_refuses_fails_alone() -> None:
    # Both prefill instances are busy with 30,000-token prompts; a prompt longer than the
    # context is held for prefill-0 and refused by its engine when released: it fails,
    # and the prompt held behind it on prefill-1 is served.
    routing = RoutingSettings.model_validate({"prefillHold": {"maxPerWorker": 8}})
    too_long = PROFILE.max_context_tokens + 1
    requests = [
        TraceRequest(0.0, 30_000, 2, (30,), 30_000, None, 0),
        TraceRequest(0.0, 30_000, 2, (31,), 30_000, None, 1),
        TraceRequest(0.0, too_long, 2, (), 0, None, 2),
        TraceRequest(0.0, 9000, 2, (33,), 9000, None, 3),
    ]
    shape = ClusterShape(num_prefill=2, num_decode=1)
    records = simulate(_trace(*requests), shape, routing).requests
    assert [r.is_finished for r in records] == [True, True, False, True]
