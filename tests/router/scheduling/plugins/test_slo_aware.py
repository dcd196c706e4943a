"""slo-aware-scorer: max(0, 1 − predicted / SLO) for the stage's TTFT and/or TPOT."""

from __future__ import annotations

import pytest

from triskel.common.profiles import LatencyProfile
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import max_score, precise_prefix, slo_aware
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import (
    ActiveLoad,
    CycleState,
    Endpoint,
    SchedulingRequest,
    Stage,
)

from support.scheduling import endpoint, request, scheduler_from

# Round numbers so every prediction below is done by hand:
#   TTFT = ⌈queued/1000⌉·10 + 0.5·queued  +  (10 + 0.5·uncached, or 0 when nothing to compute)
#   TPOT = 5 + 0.01·context·batch + 2·batch,   batch = running + 1
PROFILE = LatencyProfile.model_validate(
    {
        "name": "test",
        "model": "m",
        "hardware": "none",
        "num_gpus": 1,
        "geometry": {"num_layers": 1, "num_kv_heads": 1, "head_dim": 1, "dtype_bytes": 2},
        "max_context_tokens": 4096,
        "kv_capacity_tokens": 4096,
        "max_num_batched_tokens": 1000,
        "max_num_seqs": 64,
        "startup_s": 60,
        "prefill": {"a_ms": 10, "b_ms_per_token": 0.5, "c_ms_per_token2": 0},
        "decode": {"a_ms": 5, "b_ms_per_context_token": 0.01, "c_ms_per_seq": 2},
        "encode": {"a_ms": 0, "b_ms_per_token": 0, "pixels_per_token_side": 28},
        "sources": ["hand-picked for tests"],
    }
)
# 64 prompt tokens = 4 full blocks of 16; decode context = 64 + 72/2 = 100 tokens.
PROMPT = tuple(range(64))
MAX_TOKENS = 72


def with_profile(
    worker_id: str,
    *,
    running: int = 0,
    tokens_in_flight: int = 0,
    active: ActiveLoad | None = None,
) -> Endpoint:
    return endpoint(
        worker_id,
        running=running,
        tokens_in_flight=tokens_in_flight,
        active=active,
        profile=PROFILE,
    )


def slo_request(
    stage: Stage, *, ttft_slo_ms: float | None = None, tpot_slo_ms: float | None = None
) -> SchedulingRequest:
    return request(
        stage=stage,
        token_ids=PROMPT,
        max_tokens=MAX_TOKENS,
        ttft_slo_ms=ttft_slo_ms,
        tpot_slo_ms=tpot_slo_ms,
    )


def cached_context(cached_blocks: dict[str, int]) -> PluginContext:
    """A context whose KV index says each worker holds the prompt's first n blocks."""
    context = PluginContext()
    hashes = request(token_ids=PROMPT).block_hashes
    for worker_id, num_blocks in cached_blocks.items():
        context.kv_index.apply_snapshot(worker_id, [list(hashes[:num_blocks])], None)
    return context


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"defaultTtftSloMs": 0}, "defaultTtftSloMs"),
        ({"defaultTpotSloMs": -5}, "defaultTpotSloMs"),
        ({"ttftSloMs": 100}, "ttftSloMs"),
    ],
)
def test_bad_parameters_are_refused_naming_plugin_and_field(
    parameters: dict[str, float], field: str
) -> None:
    with pytest.raises(PluginConfigError, match=rf"plugin 'slo'.*parameters\.{field}"):
        slo_aware.create("slo", parameters, PluginContext())


def test_prefill_scores_ttft_against_the_slo_counting_only_uncached_tokens() -> None:
    candidates = [
        with_profile("cold"),  # 10 + 0.5·64 = 42 ms → 1 − 42/100
        with_profile("half"),  # 2 blocks cached, 32 uncached: 10 + 16 = 26 ms
        with_profile("warm"),  # all 4 cached: nothing to compute, 0 ms
        with_profile("busy", tokens_in_flight=100),  # 10 + 50 ahead + 42 = 102 ms: misses
        # The router's own 100 pending tokens count the same as a report's.
        with_profile("sent", active=ActiveLoad(num_prefill_tokens=100)),
    ]
    scorer = slo_aware.create("slo", {}, cached_context({"half": 2, "warm": 4}))
    scores = scorer.score(slo_request(Stage.PREFILL, ttft_slo_ms=100), candidates, CycleState())
    assert scores == pytest.approx([0.58, 0.74, 1.0, 0.0, 0.0])


def test_decode_scores_tpot_against_the_slo() -> None:
    candidates = [
        with_profile("idle"),  # batch 1: 5 + 1 + 2 = 8 ms → 1 − 8/50
        with_profile("some", running=9),  # batch 10: 5 + 10 + 20 = 35 ms
        with_profile("full", running=49),  # batch 50: 5 + 50 + 100 = 155 ms: misses
        # 9 requests the router sent and has not seen finish count as running.
        with_profile("sent", active=ActiveLoad(num_requests=9)),
    ]
    scorer = slo_aware.create("slo", {}, PluginContext())
    scores = scorer.score(slo_request(Stage.DECODE, tpot_slo_ms=50), candidates, CycleState())
    assert scores == pytest.approx([0.84, 0.3, 0.0, 0.3])


def test_unified_takes_the_tighter_of_both() -> None:
    candidates = [
        with_profile("idle"),  # TTFT 42/100 → 0.58; TPOT 8/50 → 0.84: TTFT binds
        with_profile("some", running=9),  # TTFT 0.58; TPOT 35/50 → 0.3: TPOT binds
    ]
    scorer = slo_aware.create("slo", {}, PluginContext())
    req = slo_request(Stage.UNIFIED, ttft_slo_ms=100, tpot_slo_ms=50)
    assert scorer.score(req, candidates, CycleState()) == pytest.approx([0.58, 0.3])


def test_encode_has_no_slo_so_all_score_one() -> None:
    scorer = slo_aware.create("slo", {}, PluginContext())
    candidates = [with_profile("a"), with_profile("b", running=40)]
    assert scorer.score(slo_request(Stage.ENCODE), candidates, CycleState()) == [1.0, 1.0]


def test_parameters_supply_slos_the_request_lacks() -> None:
    scorer = slo_aware.create(
        "slo", {"defaultTtftSloMs": 84, "defaultTpotSloMs": 16}, PluginContext()
    )
    req = slo_request(Stage.UNIFIED)
    # TTFT 42 of 84 → 0.5; TPOT 8 of 16 → 0.5.
    assert scorer.score(req, [with_profile("a")], CycleState()) == pytest.approx([0.5])


def test_a_zero_slo_is_missed_by_everyone() -> None:
    scorer = slo_aware.create("slo", {}, cached_context({"warm": 4}))
    req = slo_request(Stage.PREFILL, ttft_slo_ms=0)
    assert scorer.score(req, [with_profile("warm")], CycleState()) == [0.0]


def test_a_worker_without_profile_is_predicted_per_token() -> None:
    scorer = slo_aware.create("slo", {}, PluginContext())
    req = slo_request(Stage.PREFILL, ttft_slo_ms=100)
    # The predictor charges 0.1 ms per token without a profile: 64 tokens → 6.4 ms of 100.
    assert scorer.score(req, [endpoint("unprofiled")], CycleState()) == pytest.approx([0.936])


def test_a_prompt_shorter_than_a_block_has_nothing_cached() -> None:
    scorer = slo_aware.create("slo", {}, PluginContext())
    req = request(stage=Stage.PREFILL, token_ids=range(10), ttft_slo_ms=100)
    # No full block, so no index lookup: 10 + 0.5·10 = 15 ms of 100.
    assert scorer.score(req, [with_profile("a")], CycleState()) == pytest.approx([0.85])


def test_shares_prefix_matches_with_the_precise_prefix_scorer() -> None:
    context = cached_context({"half": 2})
    candidates = [with_profile("cold"), with_profile("half")]
    state = CycleState()
    slo_aware.create("slo", {}, context).score(slo_request(Stage.PREFILL), candidates, state)
    # The matches sit in the cycle state, so the prefix scorer does not query the index again.
    assert state.memo(precise_prefix.MATCHES_KEY, dict) == {"cold": 0, "half": 2}


def test_no_candidates() -> None:
    scorer = slo_aware.create("slo", {}, PluginContext())
    assert scorer.score(slo_request(Stage.UNIFIED), [], CycleState()) == []


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [slo_aware, max_score],
        {
            "plugins": [
                {"type": "slo-aware-scorer", "name": "slo"},
                {"type": "max-score-picker"},
            ],
            "profiles": [
                {
                    "name": "prefill",
                    "plugins": [{"pluginRef": "slo"}, {"pluginRef": "max-score-picker"}],
                }
            ],
        },
        cached_context({"half": 2}),
    )
    decision = scheduler.schedule(
        slo_request(Stage.PREFILL, ttft_slo_ms=100), [with_profile("cold"), with_profile("half")]
    )
    # half: 26 ms of 100 beats cold: 42 ms.
    assert decision.endpoint.worker_id == "half"
    assert decision.scores == pytest.approx({"cold": 0.58, "half": 0.74})
