"""The router on a membership file (`triskel up`): workers join and leave as the file
changes, without a restart, and routing stays the router's own."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from triskel.common.api import Role
from triskel.common.local_membership import LocalMembership, LocalPool, write_membership
from triskel.router.discovery.membership import (
    LOCAL_NAMESPACE,
    MembershipFile,
    MembershipFileError,
    cluster_config,
)
from triskel.router.process import (
    RouterEndpoints,
    RouterProcessConfig,
    RouterStartupError,
    run_router,
)

from support.local_workers import local_workers, mock_pool


def membership(*endpoints: str) -> LocalMembership:
    pool = LocalPool(name="uni", role=Role.UNIFIED, model="m", endpoints=list(endpoints))
    return LocalMembership(pools=[pool])


def test_pools_become_a_graph_per_model() -> None:
    listed = LocalMembership(
        pools=[
            LocalPool(name="p", role=Role.PREFILL, model="a", endpoints=["127.0.0.1:1"]),
            LocalPool(name="d", role=Role.DECODE, model="a", endpoints=["127.0.0.1:2"]),
            LocalPool(name="u", role=Role.UNIFIED, model="b"),
        ]
    )
    config = cluster_config(listed)
    assert [(g.model, [p.name for p in g.pools]) for g in config.graphs] == [
        ("a", ["d", "p"]),  # the router config keeps pools sorted by name
        ("b", ["u"]),
    ]


@pytest.mark.asyncio
async def test_the_file_gives_each_asked_pool_its_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "membership.json"
    write_membership(path, membership("127.0.0.1:7001", "127.0.0.1:7002"))
    source = MembershipFile(path)
    source.read_config()
    found = await source.fetch_endpoints([(LOCAL_NAMESPACE, "uni"), (LOCAL_NAMESPACE, "none")])
    assert found == {(LOCAL_NAMESPACE, "uni"): ["127.0.0.1:7001", "127.0.0.1:7002"]}
    # A broken rewrite is skipped: the last good membership stands.
    path.write_text('{"pools": [{"name": "uni"}]}')
    assert not source.refresh()
    assert source.membership == membership("127.0.0.1:7001", "127.0.0.1:7002")


def test_a_missing_or_broken_file_is_named_at_start(tmp_path: Path) -> None:
    with pytest.raises(MembershipFileError, match=r"membership_file: cannot read .*absent"):
        MembershipFile(tmp_path / "absent.json").load()
    broken = tmp_path / "broken.json"
    broken.write_text("{}{")
    with pytest.raises(MembershipFileError, match="is not a membership document"):
        MembershipFile(broken).load()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cluster_config": "/x.json"}, "membership_file: not with cluster_config"),
        ({"workers": ["127.0.0.1:1"]}, "workers: not with membership_file"),
    ],
)
def test_the_membership_file_is_the_only_source_of_workers(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RouterProcessConfig.model_validate({"membership_file": "/m.json", **fields})


@contextlib.asynccontextmanager
async def router(path: Path) -> AsyncIterator[str]:
    stop = asyncio.Event()
    ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
    config = RouterProcessConfig(
        http_address="127.0.0.1:0", grpc_address="127.0.0.1:0", membership_file=path
    )
    task = asyncio.create_task(run_router(config, ready.set_result, stop))
    try:
        waits: list[asyncio.Future[Any]] = [ready, task]
        await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # its startup error
        yield f"http://{ready.result().http_address}"
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


async def complete(base_url: str) -> int:
    body = {"model": "m", "prompt": "hello there", "max_tokens": 2}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/v1/completions", json=body) as response,
    ):
        await response.read()
        return response.status


async def picks(base_url: str) -> dict[str, float]:
    """Scheduling decisions per worker id, from the router's metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as r:
        text = await r.text()
    found: dict[str, float] = {}
    pattern = r'^triskel_router_decisions_total\{[^}]*worker="([^"]*)"[^}]*\} (\S+)$'
    for worker, value in re.findall(pattern, text, re.M):
        found[worker] = found.get(worker, 0.0) + float(value)
    return found


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_workers_join_and_leave_with_the_file_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "membership.json"
    async with local_workers(mock_pool("unified"), 2) as (first, second):
        write_membership(path, membership(first))
        async with router(path) as base_url:
            assert await complete(base_url) == 200
            assert set(await picks(base_url)) == {"w0"}

            # The second worker is listed: both serve.
            write_membership(path, membership(first, second))

            async def both_used() -> bool:
                assert await complete(base_url) == 200
                return set(await picks(base_url)) == {"w0", "w1"}

            await eventually(both_used)

            # The first leaves the file: after a poll, nothing more goes to it.
            write_membership(path, membership(second))

            async def first_dropped() -> bool:
                before = await picks(base_url)
                for _ in range(4):
                    assert await complete(base_url) == 200
                return (await picks(base_url)).get("w0") == before.get("w0")

            await eventually(first_dropped)


@pytest.mark.asyncio
async def test_a_router_without_its_membership_file_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(RouterStartupError, match="membership_file: cannot read"):
        async with router(tmp_path / "absent.json"):
            pass
