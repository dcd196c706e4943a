"""Request validation: every rejection names the field and the values involved."""

from __future__ import annotations

import dataclasses
import re

import pytest

from triskel.common.hashing import BlockHash, hash_blocks
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.core import EngineConfig
from triskel.workers.engine.request import EngineRequest
from triskel.workers.engine.validation import KvCapacityError, validate_request


@pytest.mark.parametrize(
    ("bad_request", "message"),
    [
        (EngineRequest("r", [], 5), "prompt_token_ids: must not be empty"),
        (EngineRequest("r", [1, -2], 5), "prompt_token_ids: ids must be in"),
        (EngineRequest("r", [1], 0), "max_tokens: must be >= 1, got 0"),
        (
            EngineRequest("r", [1] * 4000, 100),
            "max_tokens: prompt (4000 tokens) + max_tokens (100) exceeds the context window "
            "of 4096 tokens",
        ),
        (
            EngineRequest("r", [1] * 200, 60),
            "max_tokens: prompt (200 tokens) + max_tokens (60) do not fit this deployment's "
            "KV cache; send a shorter prompt or a smaller max_tokens",
        ),
        (EngineRequest("r", [1], 5, remote_kv=True), "first_token_id: required"),
        (EngineRequest("r", [1], 5, first_token_id=3), "first_token_id: only valid"),
        (
            EngineRequest("r", [1], 5, prefill_only=True, remote_kv=True, first_token_id=3),
            "remote_kv: cannot be combined with prefill_only",
        ),
        (EngineRequest("r", [1], 1, remote_kv=True, first_token_id=3), "max_tokens: a remote-KV"),
    ],
)
def test_invalid_requests_name_the_field(
    simple_profile: LatencyProfile, bad_request: EngineRequest, message: str
) -> None:
    # The pool: 64 blocks of 4 tokens; the context window: 4096 tokens.
    config = EngineConfig.from_profile(simple_profile)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        validate_request(bad_request, config, live_request_ids=set())


def test_an_ep_groups_sequence_must_fit_one_rank(simple_profile: LatencyProfile) -> None:
    # 2 ranks of 32 blocks each: a sequence's KV lives on one rank (data-parallel
    # attention), so 33 blocks are refused although the group holds 64.
    config = dataclasses.replace(EngineConfig.from_profile(simple_profile), num_ep_ranks=2)
    validate_request(EngineRequest("fits", [1] * 100, 28), config, live_request_ids=set())
    with pytest.raises(KvCapacityError) as caught:
        validate_request(EngineRequest("r", [1] * 100, 29), config, live_request_ids=set())
    assert caught.value.detail.endswith("needs 33 KV blocks but one of its EP ranks holds 32")


def test_a_request_too_big_for_the_pool_tells_the_client_no_pool_figures(
    simple_profile: LatencyProfile,
) -> None:
    # The client reads what to do; how many blocks the pool has (64) is for the log.
    config = EngineConfig.from_profile(simple_profile)
    with pytest.raises(KvCapacityError) as caught:
        validate_request(EngineRequest("r", [1] * 200, 60), config, live_request_ids=set())
    assert "64" not in str(caught.value) and "65" not in str(caught.value)
    assert caught.value.detail == (
        "prompt (200 tokens) + max_tokens (60) needs 65 KV blocks but the pool has 64"
    )


def test_a_live_request_id_is_rejected(simple_profile: LatencyProfile) -> None:
    config = EngineConfig.from_profile(simple_profile)
    with pytest.raises(ValueError, match=r"^request_id: 'r' is already in use"):
        validate_request(EngineRequest("r", [1], 5), config, live_request_ids={"r"})


def test_a_valid_request_passes(simple_profile: LatencyProfile) -> None:
    config = EngineConfig.from_profile(simple_profile)
    # Exactly the whole pool (64 blocks x 4 = 256 tokens) is still acceptable.
    validate_request(EngineRequest("r", [1] * 200, 56), config, live_request_ids=set())
    validate_request(EngineRequest("d", [1, 2], 2, remote_kv=True, first_token_id=3), config, set())


def test_the_prompt_comes_back_packed(simple_profile: LatencyProfile) -> None:
    config = EngineConfig.from_profile(simple_profile)
    prompt = [0, 7, 2**32 - 1]  # the whole id range fits
    packed = validate_request(EngineRequest("r", prompt, 5), config, set())
    assert packed.typecode == "I" and list(packed) == prompt
    with pytest.raises(ValueError, match=r"got min 1 and max 4294967296$"):
        validate_request(EngineRequest("r", [1, 2**32], 5), config, set())


PROMPT = list(range(100, 110))  # 2 full blocks of 4 and a partial one
HASHES = hash_blocks(PROMPT, 4, "simple-model")


@pytest.mark.parametrize(
    ("block_hashes", "message"),
    [
        (HASHES[:1], "prompt_block_hashes: 1 hashes for a prompt of 2 full blocks of 4 tokens"),
        # Hashed for another model (a salt would do the same): the first block differs.
        (hash_blocks(PROMPT, 4, "other-model"), "prompt_block_hashes: do not match"),
        # The last link is checked too: a prompt that ends differently is caught.
        ([HASHES[0], BlockHash(HASHES[1] ^ 1)], "prompt_block_hashes: do not match"),
    ],
)
def test_supplied_prompt_hashes_are_checked(
    simple_profile: LatencyProfile, block_hashes: list[BlockHash], message: str
) -> None:
    config = EngineConfig.from_profile(simple_profile, model="simple-model")
    validate_request(EngineRequest("r", PROMPT, 5, prompt_block_hashes=HASHES), config, set())
    request = EngineRequest("r", PROMPT, 5, prompt_block_hashes=block_hashes)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        validate_request(request, config, set())
