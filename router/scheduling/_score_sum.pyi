"""Types of the scheduler's compiled score sum (`_score_sum.c`; see score_sum.py)."""

from collections.abc import Sequence

def clamped_sum(
    columns: Sequence[object], weights: Sequence[float], n: int, /
) -> bytearray | None: ...
