"""Mock vision encoding: an image becomes a deterministic run of embedding token ids.

The token count follows a ViT that emits one token per p×p pixel tile
(p = `pixels_per_token_side`, 28 for Qwen2-VL's 14 px patches merged 2×2):
ceil(W/p)·ceil(H/p). The ids are hashed from the image's url and size into the
mock tokenizer's id range above its fixed vocabulary, so equal images give equal
ids (and share prefix-cache blocks) while never decoding to words.
"""

from __future__ import annotations

import xxhash

from triskel.common.profiles import EncodeCoefficients
from triskel.common.request_limits import DEFAULT_IMAGE_SIDE_PX
from triskel.common.tokenizer import MockTokenizer

# Ids below this decode to words or punctuation in the mock tokenizer.
_FIRST_IMAGE_TOKEN_ID = 1024


def _tokens_per_side(length_px: int, pixels_per_token_side: int) -> int:
    return -(-length_px // pixels_per_token_side)


def _resolve_side(name: str, length_px: int) -> int:
    if length_px < 0:
        raise ValueError(f"{name}: must be >= 0, got {length_px}")
    return length_px or DEFAULT_IMAGE_SIDE_PX


def num_image_tokens(width_px: int, height_px: int, coeffs: EncodeCoefficients) -> int:
    """Embedding tokens for a width×height image (a side of 0 means the default 336 px)."""
    side = coeffs.pixels_per_token_side
    width_tokens = _tokens_per_side(_resolve_side("width_px", width_px), side)
    return width_tokens * _tokens_per_side(_resolve_side("height_px", height_px), side)


def image_token_ids(
    url: str, width_px: int, height_px: int, coeffs: EncodeCoefficients
) -> list[int]:
    """The embedding token ids of one image, derived from its url and size."""
    num_tokens = num_image_tokens(width_px, height_px, coeffs)
    width_px = _resolve_side("width_px", width_px)
    height_px = _resolve_side("height_px", height_px)
    seed: int = xxhash.xxh3_64_intdigest(f"{url}\x00{width_px}x{height_px}".encode())
    span = MockTokenizer().vocab_size - _FIRST_IMAGE_TOKEN_ID
    return [
        _FIRST_IMAGE_TOKEN_ID
        + xxhash.xxh3_64_intdigest(index.to_bytes(4, "little"), seed=seed) % span
        for index in range(num_tokens)
    ]
