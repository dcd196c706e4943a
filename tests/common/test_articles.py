"""Messages read "an encode worker", never "a encode worker"."""

from __future__ import annotations

import pytest

from triskel.common.api import Role
from triskel.common.articles import with_article


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (Role.ENCODE, "an encode"),
        (Role.PREFILL, "a prefill"),
        (Role.DECODE, "a decode"),
        # "unified" starts with a "you" sound.
        (Role.UNIFIED, "a unified"),
        ("encode or unified", "an encode or unified"),
        ("image", "an image"),
        ("Opaque", "an Opaque"),
        ("user", "a user"),
        ("upper", "an upper"),
        ("tcp", "a tcp"),
        ("", "a "),
    ],
)
def test_the_article_follows_the_first_sound(word: object, expected: str) -> None:
    assert with_article(word) == expected
