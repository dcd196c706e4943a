"""Waiting for drained pods: done when idle or gone, bounded by a deadline."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.drain import wait_drained


def pod(name: str, port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"ports": [{"name": "grpc", "containerPort": port}]}]},
        "status": {"podIP": "127.0.0.1"},
    }


@pytest.mark.asyncio
async def test_pods_finish_one_by_one_and_gone_ones_count_as_drained() -> None:
    remaining = {"127.0.0.1:1": 2, "127.0.0.1:2": 0}

    async def probe(address: str) -> int | None:
        if address == "127.0.0.1:3":
            return None  # not answering: a gone worker has nothing left to finish
        remaining[address] = max(0, remaining[address] - 1)
        return remaining[address]

    result = await wait_drained([pod("a", 1), pod("b", 2), pod("c", 3)], timeout_s=10, probe=probe)
    assert (result.drained, result.timed_out) == (["a", "b", "c"], [])


@pytest.mark.asyncio
async def test_a_pod_still_busy_at_the_deadline_is_reported() -> None:
    now = [0.0]

    async def busy(_address: str) -> int:
        now[0] += 1.0  # each probe "takes" a second of the fake clock
        return 3

    result = await wait_drained([pod("a", 1)], timeout_s=2.5, probe=busy, clock=lambda: now[0])
    assert (result.drained, result.timed_out) == ([], ["a"])
