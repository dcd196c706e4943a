"""Choosing the model to benchmark: the one named, or the router's only one."""

from __future__ import annotations

import pytest

from triskel.simulator.bench.outcome import Outcome
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.run import choose_model
from triskel.simulator.bench.target import Clock, TargetError


class ModelsOnly:
    """A `Target` that only lists models."""

    def __init__(self, served: list[str]) -> None:
        self.served = served

    async def list_models(self) -> list[str]:
        return self.served

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        raise AssertionError("not sent")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("served", "requested", "chosen"),
    [
        (["m"], None, "m"),
        (["a", "b"], "b", "b"),
    ],
)
@pytest.mark.asyncio
async def test_the_model_to_use(served: list[str], requested: str | None, chosen: str) -> None:
    assert await choose_model(ModelsOnly(served), requested, "http://r:1") == chosen


@pytest.mark.parametrize(
    ("served", "requested", "message"),
    [
        (["a", "b"], None, "http://r:1 serves 2 models (a, b); pick one with --model"),
        ([], None, "http://r:1 serves 0 models (none); pick one with --model"),
        (["a"], "b", "--model b: http://r:1 serves a"),
    ],
)
@pytest.mark.asyncio
async def test_no_model_to_use_is_a_one_line_error(
    served: list[str], requested: str | None, message: str
) -> None:
    with pytest.raises(TargetError) as caught:
        await choose_model(ModelsOnly(served), requested, "http://r:1")
    assert str(caught.value) == message
