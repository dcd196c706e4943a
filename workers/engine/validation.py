"""Which requests an engine accepts. Errors read "<field>: <what is wrong, with values>"."""

from __future__ import annotations

from array import array
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING

from triskel.common.hashing import BlockHash, hash_block, root_hash
from triskel.workers.engine.request import EngineRequest

if TYPE_CHECKING:
    from triskel.workers.engine.core import EngineConfig

MAX_TOKEN_ID = 2**32 - 1  # block hashing packs ids as unsigned 32-bit integers


class KvCapacityError(ValueError):
    """A request the context window admits but the KV pool cannot hold.

    The message is the client's and names no pool figures (they would tell anyone the
    deployment's capacity); `detail` has them, for the worker's log.
    """

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def validate_request(
    request: EngineRequest, config: EngineConfig, live_request_ids: Container[str]
) -> array[int]:
    """Raises ValueError naming the offending field if `request` cannot be served
    (KvCapacityError when only the KV pool is too small for it).

    A request must fit both the model's context window and the KV pool (prompt
    plus max_tokens), as vLLM requires max_model_len to fit the KV cache, so a
    lone request can always finish. In an EP group one rank holds a sequence's KV
    (data-parallel attention): it must fit one rank's share of the pool. Returns a
    fresh copy of the prompt packed as unsigned 32-bit ids (the engine's token
    store): packing is the range check.
    """
    prompt = request.prompt_token_ids
    if not prompt:
        raise ValueError("prompt_token_ids: must not be empty")
    try:
        packed = array("I", prompt)
    except OverflowError:
        raise ValueError(
            f"prompt_token_ids: ids must be in [0, {MAX_TOKEN_ID}], "
            f"got min {min(prompt)} and max {max(prompt)}"
        ) from None
    if request.max_tokens < 1:
        raise ValueError(f"max_tokens: must be >= 1, got {request.max_tokens}")
    num_tokens = len(prompt) + request.max_tokens
    context_tokens = config.profile.max_context_tokens
    if num_tokens > context_tokens:
        raise ValueError(
            f"max_tokens: prompt ({len(prompt)} tokens) + max_tokens ({request.max_tokens}) "
            f"exceeds the context window of {context_tokens} tokens"
        )
    num_blocks = -(-num_tokens // config.block_size_tokens)
    num_ranks = config.num_ep_ranks
    if num_blocks > config.num_kv_blocks // num_ranks:
        holder = "the pool has" if num_ranks == 1 else "one of its EP ranks holds"
        sizes = f"prompt ({len(prompt)} tokens) + max_tokens ({request.max_tokens})"
        raise KvCapacityError(
            f"max_tokens: {sizes} do not fit this deployment's KV cache; send a shorter "
            "prompt or a smaller max_tokens",
            f"{sizes} needs {num_blocks} KV blocks but {holder} "
            f"{config.num_kv_blocks // num_ranks}",
        )
    if request.remote_kv:
        if request.first_token_id is None:
            raise ValueError("first_token_id: required when remote_kv is set")
        if request.prefill_only:
            raise ValueError("remote_kv: cannot be combined with prefill_only")
        if request.max_tokens < 2:
            raise ValueError(
                "max_tokens: a remote-KV request already has its first token; "
                f"max_tokens must be >= 2, got {request.max_tokens}"
            )
    elif request.first_token_id is not None:
        raise ValueError("first_token_id: only valid with remote_kv")
    if request.prompt_block_hashes is not None:
        _check_block_hashes(packed, request.prompt_block_hashes, config)
    if request.request_id in live_request_ids:
        raise ValueError(f"request_id: {request.request_id!r} is already in use")
    return packed


def _check_block_hashes(
    prompt: array[int], block_hashes: Sequence[BlockHash], config: EngineConfig
) -> None:
    """Spot-checks hashes the caller computed: their count, the first block (which the
    model, salt and block size seed) and the last link, without rehashing the prompt."""
    size = config.block_size_tokens
    num_full = len(prompt) // size
    if len(block_hashes) != num_full:
        raise ValueError(
            f"prompt_block_hashes: {len(block_hashes)} hashes for a prompt of {num_full} "
            f"full blocks of {size} tokens"
        )
    if not block_hashes:
        return
    root = root_hash(config.model, config.hash_salt)
    first = hash_block(root, prompt[:size])
    parent = block_hashes[-2] if num_full > 1 else root
    last = hash_block(parent, prompt[(num_full - 1) * size : num_full * size])
    if block_hashes[0] != first or block_hashes[-1] != last:
        raise ValueError(
            f"prompt_block_hashes: do not match the prompt's blocks (block size {size}, "
            f"model {config.model!r}, salt {config.hash_salt!r})"
        )
