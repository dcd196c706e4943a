"""Synthetic prompts: shared block ids give shared tokens and equal block hashes."""

from __future__ import annotations

import pytest

from triskel.common.hashing import hash_blocks
from triskel.traces.mooncake import load_mooncake
from triskel.traces.prompt_tokens import prompt_token_array, prompt_token_ids
from triskel.traces.types import TraceRequest

from support.real_traces import MOONCAKE_CONVERSATION, require

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def request(ids: tuple[int, ...], num_tokens: int, index: int = 0) -> TraceRequest:
    return TraceRequest(
        arrival_s=0.0,
        num_input_tokens=num_tokens,
        num_output_tokens=1,
        prefix_block_ids=ids,
        prefix_block_tokens=512 if ids else 0,
        session_id=None,
        index=index,
    )


@pytest.mark.parametrize("k", [0, 1, 3])
def test_first_k_shared_ids_share_exactly_k_blocks_of_tokens_and_hashes(k: int) -> None:
    # k shared ids then three of their own, the last block partly filled.
    num_tokens = (k + 3) * 512 - 100
    ours = request((*range(k), 100, 101, 102), num_tokens, index=0)
    theirs = request((*range(k), 200, 201, 202), num_tokens, index=1)
    a, b = prompt_token_ids(ours), prompt_token_ids(theirs)
    assert a[: k * 512] == b[: k * 512]
    # Block k has different ids, so its tokens differ (equal 512-token random
    # blocks would be a 1 in 32000^512 coincidence).
    assert a[k * 512 : (k + 1) * 512] != b[k * 512 : (k + 1) * 512]
    hashes_a, hashes_b = hash_blocks(a, 512, MODEL), hash_blocks(b, 512, MODEL)
    assert hashes_a[:k] == hashes_b[:k]
    assert hashes_a[k] != hashes_b[k]


def test_prompts_are_deterministic_sized_and_in_vocabulary() -> None:
    partial_last_block = request((5, 6), 700)
    tokens = prompt_token_ids(partial_last_block, vocab_size=1000)
    assert tokens == prompt_token_ids(partial_last_block, vocab_size=1000)
    assert len(tokens) == 700
    assert min(tokens) >= 0 and max(tokens) < 1000
    # A longer prompt over the same ids extends the shorter one (conversation turns).
    assert prompt_token_ids(request((5, 6, 7), 1100), vocab_size=1000)[:700] == tokens


def test_requests_without_ids_get_unique_prompts_by_index() -> None:
    first, second = request((), 300, index=0), request((), 300, index=1)
    assert prompt_token_ids(first) != prompt_token_ids(second)
    assert prompt_token_ids(first) == prompt_token_ids(request((), 300, index=0))


def test_tokens_past_the_last_id_are_unique_filler() -> None:
    # Hand-built requests may name fewer blocks than the prompt needs.
    short = request((1,), 800, index=4)
    tokens = prompt_token_ids(short)
    assert len(tokens) == 800
    assert tokens[:512] == prompt_token_ids(request((1,), 512, index=9))


def test_salt_gives_an_independent_set_of_prompts() -> None:
    shared = request((0, 1), 1024)
    assert prompt_token_ids(shared, salt="run-2") != prompt_token_ids(shared)


def test_array_and_list_forms_agree() -> None:
    shared = request((0, 1), 900)
    assert prompt_token_array(shared).tolist() == prompt_token_ids(shared)


def test_bad_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size must be >= 2, got 1"):
        prompt_token_ids(request((0,), 10), vocab_size=1)


def test_real_trace_prefix_sharing_survives_into_hashes() -> None:
    first, second = load_mooncake(require(MOONCAKE_CONVERSATION), limit=2).requests
    # The README: both rows start with hash id 0 and differ from the second id on.
    hashes = [hash_blocks(prompt_token_ids(r), 512, MODEL) for r in (first, second)]
    assert hashes[0][0] == hashes[1][0]
    assert hashes[0][1] != hashes[1][1]
