"""What a lookup or a store came to, and the reasons a lookup gives."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from triskel.router.semantic_cache.entries import CacheEntry
from triskel.router.types import CacheStatus

REASON_EXACT = "exact"
REASON_SEMANTIC = "semantic"
REASON_NO_NEIGHBOUR = "no neighbour"
REASON_BELOW_THRESHOLD = "below threshold"
REASON_EXPIRED = "expired"
REASON_STORE_UNAVAILABLE = "store unavailable"
GUARD_REASON_PREFIX = "guard: "  # + guards_agree's reason, e.g. "guard: numbers differ"


@dataclass(frozen=True, slots=True)
class Lookup:
    status: CacheStatus
    reason: str  # exact / semantic / below threshold / guard: ... / expired / ...
    entry: CacheEntry | None = None  # set on a hit
    # Of the entry that answered (1.0 exact), or of the neighbour whose rejection
    # `reason` tells (0.0 when there was none).
    similarity: float = 0.0
    seconds: float = 0.0  # the lookup's duration


class StoreResult(StrEnum):
    STORED = "stored"
    REFUSED = "refused"  # not a complete answer
    DROPPED = "dropped"  # the store was unavailable
