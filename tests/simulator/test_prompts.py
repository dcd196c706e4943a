"""PromptCache: prompts built once per trace, the same as built fresh, memory bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.common.hashing import hash_blocks
from triskel.common.routing_api import RoutingSettings
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.prompts import PromptCache
from triskel.simulator.run import prompt_cache, simulate
from triskel.traces import load_trace
from triskel.traces.prompt_tokens import packed_prompt_token_ids
from triskel.traces.types import Trace

DATA = Path(__file__).resolve().parents[1] / "data" / "traces"
BLOCK = 16
MODEL = "m"


def _trace(limit: int) -> Trace:
    return load_trace(str(DATA / "mooncake_conversation_head200.jsonl"), limit=limit)


def test_a_kept_prompt_is_the_one_built_fresh() -> None:
    cache = PromptCache(BLOCK, MODEL, "salt")
    for request in _trace(6).requests:
        fresh_tokens = packed_prompt_token_ids(request)
        fresh_hashes = hash_blocks(fresh_tokens, BLOCK, MODEL, "salt")
        for _ in range(2):  # built, then read back
            tokens, hashes = cache.prompt(request)
            assert (tokens, hashes) == (fresh_tokens, fresh_hashes)
    assert cache.num_tokens == sum(r.num_input_tokens for r in _trace(6).requests)


def test_each_caller_gets_its_own_hash_list() -> None:
    cache = PromptCache(BLOCK, MODEL)
    request = _trace(1).requests[0]
    _, hashes = cache.prompt(request)
    hashes.clear()  # a caller's list is its own: the kept hashes do not change
    assert cache.prompt(request)[1] == hash_blocks(packed_prompt_token_ids(request), BLOCK, MODEL)


def test_past_max_tokens_prompts_are_built_but_not_kept() -> None:
    requests = _trace(4).requests
    # Room for the first two prompts only (the head of the Mooncake trace: 6,758 and
    # 7,322 tokens), so the third and fourth are built on every call.
    cache = PromptCache(BLOCK, MODEL, max_tokens=6_758 + 7_322)
    for request in requests:
        cache.prompt(request)
    assert cache.num_tokens == 6_758 + 7_322
    for request in requests:
        tokens, _ = cache.prompt(request)
        assert tokens == packed_prompt_token_ids(request)
    assert cache.num_tokens == 6_758 + 7_322
    with pytest.raises(ValueError, match="max_tokens: must be >= 0, got -1"):
        PromptCache(BLOCK, MODEL, max_tokens=-1)


def test_runs_sharing_a_cache_replay_the_runs_without_one() -> None:
    trace = _trace(24)
    shape = ClusterShape(num_prefill=2, num_decode=2)
    prompts = prompt_cache(shape)
    for rate_scale in (2.0, 4.0, 2.0):  # the second 2x run reads every prompt back
        shared = simulate(trace, shape, RoutingSettings(), rate_scale=rate_scale, prompts=prompts)
        alone = simulate(trace, shape, RoutingSettings(), rate_scale=rate_scale)
        assert shared.requests == alone.requests
    assert prompts.num_tokens == sum(r.num_input_tokens for r in trace.requests)


def test_a_cache_for_another_engine_is_refused() -> None:
    shape = ClusterShape(num_unified=1)
    with pytest.raises(ValueError, match="prompts: a cache built for another block size"):
        simulate(_trace(1), shape, RoutingSettings(), prompts=PromptCache(BLOCK + 1, MODEL))
