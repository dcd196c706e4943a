"""A serving router collects its young objects less often than CPython's default, and
leaves the process as it found it (a router run inside another program)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router


@pytest.mark.asyncio
async def test_a_serving_router_collects_young_objects_every_10000_allocations(
    tmp_path: Path,
) -> None:
    (tmp_path / "members.json").write_text('{"formatVersion": 1, "pools": []}')
    config = RouterProcessConfig.model_validate(
        {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "membershipFile": str(tmp_path / "members.json"),
        }
    )
    before = gc.get_threshold()
    serving: list[tuple[int, ...]] = []
    stop = asyncio.Event()

    def ready(_endpoints: RouterEndpoints) -> None:
        serving.append(gc.get_threshold())
        stop.set()

    await asyncio.wait_for(run_router(config, ready, stop), 60)
    assert serving == [(10_000, *before[1:])]
    assert gc.get_threshold() == before
