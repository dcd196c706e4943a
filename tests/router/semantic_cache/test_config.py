"""The cache's own settings fail loudly, naming the field and the value."""

from __future__ import annotations

import pytest

from triskel.router.semantic_cache.config import SemanticCacheConfig


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_search_k": 4}, r"max_search_k \(4\) must be >= search_k \(8\)"),
        ({"call_timeout_s": 0}, r"call_timeout_s must be > 0, got 0"),
        ({"ndim": 0}, r"ndim must be >= 1, got 0"),
        ({"backoff_max_s": 0.1}, r"backoff_max_s \(0.1\) must be >= backoff_initial_s \(0.5\)"),
    ],
)
def test_bad_values_are_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SemanticCacheConfig(**fields)  # type: ignore[arg-type]


def test_defaults_are_valid() -> None:
    assert SemanticCacheConfig().search_k == 8
