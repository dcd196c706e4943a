"""Each trace request's prompt: its token ids and its block hashes, built once per trace.

A run builds every prompt when its request arrives (stand-in tokens, then one XXH3
per block), a twentieth of a run on long prompts. A goodput search replays one trace
at many rates and a suite under many policies, and the prompts never change: only
arrival times are scaled (`Trace.scaled`). So runs of one trace may share a
`PromptCache`, which keeps what it built, packed (4 bytes a token, 8 a block hash),
up to `max_tokens` prompt tokens; past that it builds without keeping, so memory
stays bounded on whole traces and the prompts are the same either way.

One cache serves one trace (requests are known by their index) and one engine
layout (block size, model, salt).
"""

from __future__ import annotations

from array import array
from typing import cast

from triskel.common.hashing import BlockHash, hash_blocks
from triskel.traces.prompt_tokens import packed_prompt_token_ids
from triskel.traces.types import TraceRequest

DEFAULT_MAX_TOKENS = 64_000_000
"""~290 MB kept: the suite's longest workloads (2,000 Mooncake prompts, 24 M tokens) fit."""


class PromptCache:
    """Prompts of one trace for one engine layout; `max_tokens` 0 keeps nothing."""

    __slots__ = ("_block_size_tokens", "_kept", "_max_tokens", "_model", "_num_tokens", "_salt")

    def __init__(
        self,
        block_size_tokens: int,
        model: str,
        hash_salt: str = "",
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if max_tokens < 0:
            raise ValueError(f"max_tokens: must be >= 0, got {max_tokens}")
        self._block_size_tokens = block_size_tokens
        self._model = model
        self._salt = hash_salt
        self._max_tokens = max_tokens
        self._num_tokens = 0
        # request index → (token ids, block hashes as unsigned 64-bit ints)
        self._kept: dict[int, tuple[array[int], array[int]]] = {}

    def is_for(self, block_size_tokens: int, model: str, hash_salt: str) -> bool:
        """Whether this cache's hashes are those of engines with this layout."""
        return (block_size_tokens, model, hash_salt) == (
            self._block_size_tokens,
            self._model,
            self._salt,
        )

    @property
    def num_tokens(self) -> int:
        """Prompt tokens kept so far."""
        return self._num_tokens

    def prompt(self, request: TraceRequest) -> tuple[array[int], list[BlockHash]]:
        """`request`'s token ids (read-only: shared between runs) and a fresh list of its
        full blocks' chained hashes (`hash_blocks`)."""
        kept = self._kept.get(request.index)
        if kept is not None:
            token_ids, hashes = kept
            return token_ids, cast(list[BlockHash], hashes.tolist())
        token_ids = packed_prompt_token_ids(request)
        block_hashes = hash_blocks(token_ids, self._block_size_tokens, self._model, self._salt)
        if self._num_tokens + len(token_ids) <= self._max_tokens:
            self._kept[request.index] = (token_ids, array("Q", block_hashes))
            self._num_tokens += len(token_ids)
        return token_ids, block_hashes
