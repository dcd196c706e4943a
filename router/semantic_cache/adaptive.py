"""The cache settings in effect for a category now, loosened while its model is loaded.

    threshold                      ttl_seconds
    base ─┐                        max ─         ┌──────
          └─┐                                  ┌┘
            └─┐                              ┌┘
    min ─     └──────              base ─────┘
         1   fullPressure  pressure        1   fullPressure  pressure

`pressure` is the target model's predicted TTFT over its TTFT SLO: at or under 1 the
model keeps up and the category's base values hold; a cached answer served under
pressure spares a request the queue, so the cache accepts looser neighbours and keeps
answers longer, linearly up to the `underLoad` values at `fullPressure`. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.semantic_api import CacheCategory


@dataclass(frozen=True, slots=True)
class Effective:
    """A category's settings for one lookup or store."""

    threshold: float  # cosine similarity a neighbour needs
    ttl_seconds: int  # lifetime given to an entry stored now
    max_entries: int  # the category's quota (not loosened)


def effective_settings(category: CacheCategory, pressure: float) -> Effective:
    load = category.under_load
    base = Effective(category.similarity_threshold, category.ttl_seconds, category.max_entries)
    if load is None or not pressure > 1.0:  # NaN (no prediction) too
        return base
    share = min(1.0, (pressure - 1.0) / (load.full_pressure - 1.0))
    threshold = base.threshold + share * (load.min_similarity_threshold - base.threshold)
    ttl_seconds = base.ttl_seconds + share * (load.max_ttl_seconds - base.ttl_seconds)
    return Effective(threshold, round(ttl_seconds), base.max_entries)
