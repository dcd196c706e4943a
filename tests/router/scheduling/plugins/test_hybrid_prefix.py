"""hybrid-prefix-scorer: the larger of the router's history and the workers' KV events."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from triskel.common.kv_tiers import KvMedium, host_hit_weight
from triskel.common.profiles import load_profile
from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.plugin import PickObserver, PluginContext, Scorer
from triskel.router.scheduling.plugins import hybrid_prefix, precise_prefix
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState, Endpoint

from support.prefix_scheduling import endpoint, not_again, prompt_request

H100 = load_profile("llama-3.1-8b-h100")  # a 50 GB/s host link: a host block is worth ≈ 0.94
REQUEST = prompt_request(range(40))  # 10 full blocks of 4
BLOCKS = REQUEST.block_hashes


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def on_h100(worker_id: str) -> Endpoint:
    return dataclasses.replace(endpoint(worker_id), profile=H100)


def build(
    index: KvBlockIndex, clock: FakeClock, parameters: dict[str, Any] | None = None
) -> hybrid_prefix.HybridPrefixScorer:
    context = PluginContext(kv_index=index, clock=clock)
    return hybrid_prefix.create("hybrid", parameters or {}, context)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"ttlSeconds": 0}, "ttlSeconds"),
        ({"lruCapacityPerWorker": 0}, "lruCapacityPerWorker"),
        ({"weightHost": 1}, "weightHost"),  # unknown keys are refused, not ignored
    ],
)
def test_bad_parameters_name_plugin_and_field(parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'hybrid'.*parameters\.{field}"):
        build(KvBlockIndex(), FakeClock(), parameters)


def test_each_worker_scores_the_larger_of_its_two_evidences() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, BLOCKS[:4])  # events: a holds 4 blocks on its GPU
    index.apply_stored("b", 1, BLOCKS[:2])  # events: b holds 2 on its GPU, 8 on its host
    index.apply_stored("b", 2, BLOCKS[2:], KvMedium.HOST)
    scorer = build(index, FakeClock())
    assert isinstance(scorer, Scorer) and not isinstance(scorer, PickObserver)
    scorer.history.record("c", REQUEST.block_hashes)  # history: c was just sent all 10
    scorer.history.record("a", BLOCKS[:6])  # history: a was sent 6 (more than it reported)
    w = host_hit_weight(H100)
    state = CycleState()
    candidates = Candidates([on_h100("a"), on_h100("b"), on_h100("c")])
    scores = scorer.score(REQUEST, candidates, state)
    # a: max(history 6, events 4) = 6 of 10. b: max(0, 2 + 8w ≈ 9.5) ≈ 0.95.
    # c: max(10, 0) = 1.0: a prompt still prefilling counts fully, before any event.
    assert scores == pytest.approx([0.6, (2 + 8 * w) / 10, 1.0])
    assert scorer.score_columns(REQUEST, candidates, state).tolist() == scores
    matches = state.memo_for(hybrid_prefix.MATCHES_KEY, candidates, not_again)
    assert matches.tolist() == pytest.approx([6, 2 + 8 * w, 10])
    # The precise walk is there for other plugins of the cycle, walked once.
    assert precise_prefix.matched_blocks(index, REQUEST, candidates, state) == {
        "a": 4,
        "b": 2,
        "c": 0,
    }
    gpu, _ = state.memo_for(precise_prefix.TIER_COLUMNS_KEY, candidates, not_again)
    assert gpu.tolist() == [4, 2, 0]


def test_events_keep_what_the_history_forgot() -> None:
    index = KvBlockIndex()
    index.apply_stored("a", 1, BLOCKS)
    clock = FakeClock()
    scorer = build(index, clock, {"ttlSeconds": 120})
    scorer.history.record("b", REQUEST.block_hashes)
    clock.now_s = 121.0  # b's history has expired; a's KV events still say it holds all
    assert scorer.score(REQUEST, [on_h100("a"), on_h100("b")], CycleState()) == [1.0, 0.0]


def test_other_replicas_history_counts_as_ours() -> None:
    scorer = build(KvBlockIndex(), FakeClock())
    shared = dataclasses.replace(REQUEST, shared_prefix_matches={"b": 5})
    assert scorer.score(shared, [on_h100("a"), on_h100("b")], CycleState()) == [0.0, 0.5]


def test_a_prompt_without_a_full_block_scores_zero() -> None:
    scorer = build(KvBlockIndex(), FakeClock())
    short = prompt_request(range(3))
    scorer.history.record("a", short.block_hashes)
    assert scorer.score(short, [on_h100("a")], CycleState()) == [0.0]
