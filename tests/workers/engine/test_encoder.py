"""Mock vision encoding: token counts from image size, deterministic ids."""

from __future__ import annotations

import pytest

from triskel.common.profiles import EncodeCoefficients
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.engine.encoder import image_token_ids, num_image_tokens

COEFFS = EncodeCoefficients(a_ms=2.0, b_ms_per_token=0.018, pixels_per_token_side=28)
URL = "https://example.com/cat.png"


@pytest.mark.parametrize(
    ("width_px", "height_px", "num_tokens"),
    [
        (336, 336, 144),  # 12 x 12 tiles of 28 px
        (0, 0, 144),  # unknown size: the default 336 x 336
        (0, 28, 12),  # only the width defaults: 12 x 1
        (28, 28, 1),
        (29, 28, 2),  # a partial tile still costs a token: ceil(29/28) = 2
        (100, 50, 8),  # ceil(100/28) = 4 x ceil(50/28) = 2
    ],
)
def test_token_count_follows_the_tile_grid(width_px: int, height_px: int, num_tokens: int) -> None:
    assert num_image_tokens(width_px, height_px, COEFFS) == num_tokens
    assert len(image_token_ids(URL, width_px, height_px, COEFFS)) == num_tokens


def test_ids_are_deterministic_and_depend_on_url_and_size() -> None:
    ids = image_token_ids(URL, 100, 50, COEFFS)
    assert ids == image_token_ids(URL, 100, 50, COEFFS)
    assert ids != image_token_ids("https://example.com/dog.png", 100, 50, COEFFS)
    assert ids[:4] != image_token_ids(URL, 100, 56, COEFFS)[:4]


def test_a_zero_side_is_the_same_image_as_an_explicit_336() -> None:
    assert image_token_ids(URL, 0, 0, COEFFS) == image_token_ids(URL, 336, 336, COEFFS)


def test_ids_never_decode_to_words() -> None:
    tokenizer = MockTokenizer()
    ids = image_token_ids(URL, 336, 336, COEFFS)
    assert all(1024 <= token < tokenizer.vocab_size for token in ids)
    assert set(tokenizer.decode(ids)) == {"\N{REPLACEMENT CHARACTER}"}


@pytest.mark.parametrize(
    ("width_px", "height_px", "field"), [(-1, 10, "width_px"), (10, -1, "height_px")]
)
def test_negative_sizes_name_the_field(width_px: int, height_px: int, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        image_token_ids(URL, width_px, height_px, COEFFS)
