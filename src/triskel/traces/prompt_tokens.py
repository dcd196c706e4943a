"""Deterministic stand-in prompts for requests that come without text.

A block id always stands for the same `block_tokens` pseudo-random tokens, and a
prompt is its blocks' tokens concatenated and cut to `num_input_tokens`:

    ids     [ 7          ][ 8          ][ 31         ]
    tokens  [block(7)    ][block(8)    ][block(31)...]  cut at num_input_tokens

So two requests whose id lists start with the same k ids share exactly their
first k * block_tokens tokens, and `triskel.common.hashing.hash_blocks` gives
them equal chained hashes over that prefix, as a real shared system prompt or
conversation history would. Tokens past the last id (or all of them, for a
request without ids) are seeded by the request's index, so they are unique.

Token i of block b is SplitMix64(key(b) + (i + 1) * golden gamma) mod vocab, a
counter-based generator: every block of a prompt comes out of one vectorised
numpy expression, with no generator object per block. That is faster than
caching blocks (the first 2,000 Mooncake prompts, 27M tokens, hold 38,788
distinct ids, most used once), so nothing is cached and nothing is global.
"""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt
import xxhash

from triskel.traces.types import TraceRequest

TokenArray = npt.NDArray[np.uint32]

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def prompt_token_ids(request: TraceRequest, vocab_size: int = 32000, salt: str = "") -> list[int]:
    """`request.num_input_tokens` token ids in [0, vocab_size), the same on every call.

    `salt` gives an independent set of prompts (e.g. per benchmark run, to start
    from a cold cache). Raises ValueError for a vocabulary below 2 tokens.
    """
    tokens: list[int] = prompt_token_array(request, vocab_size, salt).tolist()
    return tokens


def packed_prompt_token_ids(
    request: TraceRequest, vocab_size: int = 32000, salt: str = ""
) -> array[int]:
    """`prompt_token_ids` packed as unsigned 32-bit ids (`array("I")`).

    That is how block hashing and the mock engine store tokens, so they take it
    without converting, and it skips building a Python int per token (a list of
    10k ids costs as much as generating them, and ten times the memory).
    """
    return array("I", prompt_token_array(request, vocab_size, salt).tobytes())


def prompt_token_array(
    request: TraceRequest, vocab_size: int = 32000, salt: str = ""
) -> TokenArray:
    """`prompt_token_ids` as a numpy array, for callers that never need Python ints.

    Converting to a list costs about as much as generating the tokens.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    num_tokens = request.num_input_tokens
    block_tokens = request.prefix_block_tokens
    pieces: list[TokenArray] = []
    num_covered = 0
    if block_tokens > 0 and request.prefix_block_ids:
        num_blocks = min(len(request.prefix_block_ids), -(-num_tokens // block_tokens))
        ids = np.array(request.prefix_block_ids[:num_blocks], dtype=np.uint64)
        keys = _splitmix(ids * _GOLDEN_GAMMA + _key(f"block\x00{salt}"))
        pieces.append(_stream(keys, block_tokens, vocab_size).reshape(-1))
        num_covered = num_blocks * block_tokens
    if num_covered < num_tokens:
        key = np.array([_key(f"request\x00{request.index}\x00{salt}")], dtype=np.uint64)
        pieces.append(_stream(key, num_tokens - num_covered, vocab_size).reshape(-1))
    if not pieces:
        return np.empty(0, dtype=np.uint32)
    return np.concatenate(pieces)[:num_tokens]


def _key(text: str) -> np.uint64:
    return np.uint64(xxhash.xxh3_64_intdigest(text.encode()))


def _stream(keys: npt.NDArray[np.uint64], count: int, vocab_size: int) -> TokenArray:
    """A (len(keys), count) array: row r is the first `count` tokens of key r's stream."""
    counters = np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN_GAMMA
    mixed = _splitmix(keys[:, None] + counters[None, :])
    # x - (x // v) * v is x % v, exactly (unsigned), but numpy divides by a scalar
    # divisor with a precomputed multiplier and `%` with a real division: 8x faster.
    divisor = np.uint64(vocab_size)
    return (mixed - mixed // divisor * divisor).astype(np.uint32)


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's output function: a bijection that scatters nearby inputs."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
