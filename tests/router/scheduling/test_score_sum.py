"""The scheduler's weighted sum: the compiled pass and numpy's calls give the same totals,
value for value, and anything the compiled pass does not take goes to numpy."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from triskel.router.scheduling import score_sum
from triskel.router.scheduling.score_sum import clamped_sum, compiled_sum, numpy_sum

SPECIAL = [float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.0, -1e-300, 1 + 1e-16, 0.5]


@pytest.fixture
def compiled() -> None:
    if compiled_sum is None:
        if os.environ.get("TRISKEL_REQUIRE_COMPILED") == "1":
            raise AssertionError("the compiled score sum was not built")
        pytest.skip("the compiled score sum was not built (no C compiler at install)")


def _bits(column: np.ndarray) -> list[int]:
    """Each float's bit pattern: NaN equals NaN, and -0.0 differs from 0.0."""
    bits: list[int] = column.view(np.uint64).tolist()
    return bits


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("seed", range(5))
def test_compiled_and_numpy_sums_agree_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.choice([0, 1, 4, 7, 1_024])
        count = rng.randrange(0, 6)
        columns = [
            np.array(
                [
                    rng.choice(SPECIAL) if rng.random() < 0.1 else rng.uniform(-0.5, 1.5)
                    for _ in range(n)
                ]
            )
            for _ in range(count)
        ]
        weights = [rng.choice([0.0, 1.0, 1.5, 2.0, rng.uniform(0, 5)]) for _ in range(count)]
        assert _bits(clamped_sum(columns, weights, n)) == _bits(numpy_sum(columns, weights, n))


@pytest.mark.usefixtures("compiled")
def test_the_compiled_sum_clamps_weighs_and_adds_in_order() -> None:
    columns = [np.array([2.0, -1.0, 0.25, float("nan")]), np.array([0.5, 0.5, 0.5, 0.0])]
    totals = clamped_sum(columns, [2.0, 1.0], 4)
    assert totals[:3].tolist() == [2.5, 0.5, 1.0] and np.isnan(totals[3])


@pytest.mark.usefixtures("compiled")
def test_columns_it_does_not_take_go_to_numpy() -> None:
    n = 6
    others = [
        np.arange(n),  # int64
        np.arange(n, dtype=np.float32) / 4,
        np.linspace(0, 1, 2 * n)[::2],  # not contiguous
        np.linspace(0, 1, n).astype(">f8"),  # not native
    ]
    for other in others:
        assert compiled_sum([other], [1.5], n) is None
        assert _bits(clamped_sum([other], [1.5], n)) == _bits(numpy_sum([other], [1.5], n))
    assert compiled_sum([np.zeros(n - 1)], [1.0], n) is None  # a length numpy would refuse
    with pytest.raises(ValueError):
        clamped_sum([np.zeros(n - 1)], [1.0], n)


@pytest.mark.usefixtures("compiled")
def test_bad_arguments_are_refused_with_the_reason() -> None:
    assert compiled_sum is not None
    with pytest.raises(ValueError, match="one weight per column"):
        compiled_sum([np.zeros(2)], [], 2)
    with pytest.raises(ValueError, match="n must be >= 0"):
        compiled_sum([], [], -1)
    with pytest.raises(TypeError, match="expected"):
        compiled_sum([], [])  # type: ignore[call-arg]


def test_without_the_compiled_sum_numpy_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_sum, "compiled_sum", None)
    assert score_sum.implementation() == "numpy"
    columns = [np.array([0.2, 3.0]), np.array([-1.0, 0.5])]
    assert clamped_sum(columns, [1.0, 2.0], 2).tolist() == [0.2, 2.0]
