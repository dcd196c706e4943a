"""Deterministic "model outputs": the same prompt always yields the same tokens.

A prompt's seed is the XXH3-64 hash of its token ids, salted with the model's name
(two models answer the same prompt differently, so a test can tell which answered);
the output token at index
i is a hash of (seed, i) folded into the mock tokenizer's word ids, so it decodes
to a readable word. Each prompt also has a natural length (16–512 tokens,
log-uniform) after which it stops, like an EOS. Because both depend only on the
prompt, a unified worker and a prefill + decode pair produce identical streams:
index 0 is the token prefill emits, and decode continues from index 1.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Sequence

import xxhash

from triskel.common.tokenizer import MockTokenizer

MIN_NATURAL_LENGTH_TOKENS = 16
MAX_NATURAL_LENGTH_TOKENS = 512
_NUM_WORD_TOKENS = MockTokenizer().num_word_tokens
_LENGTH_SALT = b"triskel/natural-length"
_TWO_POW_64 = float(2**64)
# The index as 8 little-endian bytes (int.to_bytes(8, "little"), a little faster per token).
_pack_index = struct.Struct("<Q").pack


def prompt_seed(prompt_token_ids: Sequence[int], model: str = "") -> int:
    """The sampling seed of a prompt for `model` (hash once per request, reuse for every
    token). No model: the unsalted seed."""
    salt = xxhash.xxh3_64_intdigest(model.encode()) if model else 0
    return int(xxhash.xxh3_64_intdigest(array("I", prompt_token_ids).tobytes(), salt))


def with_request_seed(prompt_seed: int, seed: int | None) -> int:
    """The sampling seed of a request: its prompt's, or, when the client set `seed`,
    one derived from both (the same seed and prompt give the same answer; another seed,
    another answer, as with an engine's seeded sampler)."""
    if seed is None:
        return prompt_seed
    return int(xxhash.xxh3_64_intdigest(seed.to_bytes(8, "little", signed=True), prompt_seed))


def token_for_seed(seed: int, index: int) -> int:
    """Output token at `index` for a prompt with this seed, in [0, num_word_tokens)."""
    digest: int = xxhash.xxh3_64_intdigest(_pack_index(index), seed)
    return digest % _NUM_WORD_TOKENS


def output_token_id(prompt_token_ids: Sequence[int], index: int, model: str = "") -> int:
    """Output token at `index` for this prompt (convenience over the two above)."""
    return token_for_seed(prompt_seed(prompt_token_ids, model), index)


def natural_length_tokens(seed: int) -> int:
    """How many tokens a prompt with this seed generates before it stops by itself."""
    fraction: float = xxhash.xxh3_64_intdigest(_LENGTH_SALT, seed=seed) / _TWO_POW_64
    ratio = MAX_NATURAL_LENGTH_TOKENS / MIN_NATURAL_LENGTH_TOKENS
    length = round(MIN_NATURAL_LENGTH_TOKENS * math.pow(ratio, fraction))
    return min(MAX_NATURAL_LENGTH_TOKENS, length)
