"""The settings in effect under load: base values, then linearly toward `underLoad`."""

from __future__ import annotations

import pytest

from triskel.common.semantic_api import CacheCategory, LoadAdaptation
from triskel.router.semantic_cache.adaptive import Effective, effective_settings

# Base: threshold 0.95, TTL 3600 s; under load: 0.85 and 7200 s at pressure 3.
LOADED = CacheCategory(
    name="code",
    similarity_threshold=0.95,
    ttl_seconds=3600,
    max_entries=500,
    under_load=LoadAdaptation(
        min_similarity_threshold=0.85, max_ttl_seconds=7200, full_pressure=3.0
    ),
)


@pytest.mark.parametrize(
    ("pressure", "threshold", "ttl_seconds"),
    [
        (0.2, 0.95, 3600),  # the model keeps up: base values
        (1.0, 0.95, 3600),  # exactly at its SLO: still base
        # Halfway from 1 to 3: share (2 - 1) / (3 - 1) = 0.5, so threshold
        # 0.95 + 0.5 * (0.85 - 0.95) = 0.90 and TTL 3600 + 0.5 * 3600 = 5400.
        (2.0, 0.90, 5400),
        # A quarter: share 0.5 / 2 = 0.25, threshold 0.95 - 0.025 = 0.925, TTL 3600 + 900.
        (1.5, 0.925, 4500),
        (3.0, 0.85, 7200),  # full pressure: the underLoad values
        (10.0, 0.85, 7200),  # beyond it: no looser than underLoad
        (float("inf"), 0.85, 7200),
        (float("nan"), 0.95, 3600),  # no prediction: base values
    ],
)
def test_loosens_linearly_with_pressure(
    pressure: float, threshold: float, ttl_seconds: int
) -> None:
    effective = effective_settings(LOADED, pressure)
    assert effective.threshold == pytest.approx(threshold)
    assert effective.ttl_seconds == ttl_seconds
    assert effective.max_entries == 500  # the quota is never loosened


def test_without_under_load_the_base_values_always_hold() -> None:
    plain = CacheCategory(name="chat", similarity_threshold=0.9, ttl_seconds=60, max_entries=7)
    for pressure in (0.5, 1.0, 2.0, 100.0):
        assert effective_settings(plain, pressure) == Effective(0.9, 60, 7)


def test_ttl_rounds_to_whole_seconds() -> None:
    # share (1.25 - 1) / (2 - 1) = 0.25: TTL 10 + 0.25 * (15 - 10) = 11.25 → 11 s.
    category = CacheCategory(
        name="chat",
        similarity_threshold=0.9,
        ttl_seconds=10,
        under_load=LoadAdaptation(min_similarity_threshold=0.8, max_ttl_seconds=15),
    )
    effective = effective_settings(category, 1.25)
    assert effective.ttl_seconds == 11 and isinstance(effective.ttl_seconds, int)
