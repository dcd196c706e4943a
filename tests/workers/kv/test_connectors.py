"""Every connector against the same contract: exporter and importer with their own arenas."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from google.protobuf import json_format

from triskel.v1 import worker_pb2
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvTransferError
from triskel.workers.kv.control import ControlServer, FrameChannel
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.registry import create_connector

from support.kv_pairs import ConnectorPair, connector_pair, read_block

CONNECTOR_TYPES = ["tcp", "mooncake", "nccl"]
NUM_BLOCKS = 16
BLOCK_BYTES = 8192
SEED_BASE = 0x5EED_0000
EXPORTER_SCRIPT = Path(__file__).with_name("exporter_process.py")


@pytest_asyncio.fixture(params=CONNECTOR_TYPES)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[ConnectorPair]:
    async with connector_pair(
        request.param, num_blocks=NUM_BLOCKS, block_bytes=BLOCK_BYTES, seed_base=SEED_BASE
    ) as started:
        yield started


def expected_block(seed: int) -> bytes:
    reference = KvArena(1, BLOCK_BYTES)
    reference.fill_block(0, seed)
    content = read_block(reference, 0)
    reference.close()
    return content


@pytest.mark.asyncio
async def test_blocks_arrive_intact_in_any_order(pair: ConnectorPair) -> None:
    # Non-contiguous, out-of-order ids on both sides exercise the run splitting.
    src_ids = [5, 6, 7, 1, 0, 12]
    dst_ids = [9, 3, 4, 15, 14, 2]
    handle = pair.exporter.describe("req-1", src_ids, num_tokens=90)
    num_bytes = await pair.importer.receive(handle, dst_ids)
    assert num_bytes == len(src_ids) * BLOCK_BYTES
    for src, dst in zip(src_ids, dst_ids, strict=True):
        assert read_block(pair.dest, dst) == read_block(pair.source, src)
    assert pair.done == ["req-1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("skip_blocks", [1, 3, 4])
async def test_partial_pull_leaves_skipped_blocks_alone(
    pair: ConnectorPair, skip_blocks: int
) -> None:
    # Skipped destination blocks hold the decode worker's own cached prefix: they
    # must keep their content (seed 7), and only the rest counts as moved bytes.
    src_ids, dst_ids = [0, 1, 2, 3], [10, 11, 12, 13]
    for dst in dst_ids:
        pair.dest.fill_block(dst, 7)
    handle = pair.exporter.describe("req-skip", src_ids, num_tokens=64)
    num_bytes = await pair.importer.receive(handle, dst_ids, skip_blocks=skip_blocks)
    assert num_bytes == (4 - skip_blocks) * BLOCK_BYTES
    for index, (src, dst) in enumerate(zip(src_ids, dst_ids, strict=True)):
        want = expected_block(7) if index < skip_blocks else read_block(pair.source, src)
        assert read_block(pair.dest, dst) == want
    assert pair.done == ["req-skip"]


@pytest.mark.asyncio
async def test_checksum_mismatch_names_the_block(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-bad", [3, 4, 5], num_tokens=48)
    with pair.source.view(5) as view:  # block index 2 of the handle changes after describe
        view[100] ^= 0xFF
    with pytest.raises(KvTransferError, match="checksum mismatch at block 2 of request req-bad"):
        await pair.importer.receive(handle, [0, 1, 2])


@pytest.mark.asyncio
async def test_peer_gone_fails_fast(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-gone", [0, 1], num_tokens=32)
    await pair.exporter.close()
    with pytest.raises(KvTransferError, match="peer gone"):
        await pair.importer.receive(handle, [0, 1], timeout_s=10)


@pytest.mark.asyncio
async def test_withdrawn_handle_is_refused(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-w", [0, 1], num_tokens=32)
    assert pair.exporter.withdraw("req-w") is True
    assert pair.exporter.withdraw("req-w") is False
    with pytest.raises(KvTransferError, match="unknown or expired KV handle req-w"):
        await pair.importer.receive(handle, [0, 1])
    assert pair.done == []


@pytest.mark.asyncio
async def test_export_is_single_use_and_reports_done_once(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-once", [0, 1], num_tokens=32)
    await pair.importer.receive(handle, [2, 3])
    with pytest.raises(KvTransferError, match="unknown or expired KV handle req-once"):
        await pair.importer.receive(handle, [2, 3])
    assert pair.done == ["req-once"]


@pytest.mark.asyncio
async def test_refused_pull_leaves_the_export_for_a_retry(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-retry", [0, 1, 2], num_tokens=48)
    # A handle claiming one block fewer: the exporter refuses the size.
    short = dataclasses.replace(handle, block_checksums=handle.block_checksums[:2])
    with pytest.raises(KvTransferError, match="size mismatch"):
        await pair.importer.receive(short, [5, 6])
    assert pair.done == []
    assert await pair.importer.receive(handle, [5, 6, 7]) == 3 * BLOCK_BYTES
    assert pair.done == ["req-retry"]


@pytest.mark.asyncio
async def test_destination_count_must_match_the_handle(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-n", [0, 1, 2], num_tokens=48)
    with pytest.raises(KvTransferError, match="size mismatch: KV handle req-n has 3 blocks"):
        await pair.importer.receive(handle, [0, 1])


@pytest.mark.asyncio
async def test_concurrent_pulls_each_get_their_own_blocks(pair: ConnectorPair) -> None:
    handles = [pair.exporter.describe(f"req-c{i}", [i], num_tokens=16) for i in range(6)]
    await asyncio.gather(*(pair.importer.receive(h, [10 + i]) for i, h in enumerate(handles)))
    for i in range(6):
        assert read_block(pair.dest, 10 + i) == read_block(pair.source, i)
    assert sorted(pair.done) == [f"req-c{i}" for i in range(6)]


@pytest.mark.asyncio
async def test_silent_exporter_times_out(pair: ConnectorPair) -> None:
    # A listener that accepts and never answers stands in for a hung exporter.
    async def stall(channel: FrameChannel) -> None:
        await asyncio.Event().wait()

    silent = ControlServer(stall)
    address = await silent.start("127.0.0.1")
    handle = pair.exporter.describe("req-t", [0], num_tokens=16)
    try:
        with pytest.raises(KvTransferError, match=re.escape("timed out after 0.3 s")):
            await pair.importer.receive(
                dataclasses.replace(handle, address=address), [0], timeout_s=0.3
            )
    finally:
        await silent.close()


@pytest.mark.asyncio
async def test_handle_for_another_connector_is_refused() -> None:
    arena = KvArena(2, BLOCK_BYTES)
    importer = create_connector("tcp", {})
    await importer.start(arena, "decode-0")
    handle = KvHandle("r", "p", "mooncake", "127.0.0.1:1", 16, BLOCK_BYTES, (1, 2))
    try:
        with pytest.raises(KvTransferError, match="for connector 'mooncake', this is 'tcp'"):
            await importer.receive(handle, [0, 1])
    finally:
        await importer.close()
        arena.close()


async def read_line(process: asyncio.subprocess.Process, timeout_s: float = 60.0) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
    if not line:
        raise AssertionError(f"exporter process exited with {await process.wait()}")
    return line.decode().rstrip("\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("connector_type", CONNECTOR_TYPES)
async def test_bytes_cross_processes(connector_type: str, tmp_path: Path) -> None:
    num_blocks = 8
    stderr_path = tmp_path / "exporter.stderr"
    key_path = tmp_path / "kv-auth-key"
    key_path.write_bytes(KvAuthKey.generate().secret)
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXPORTER_SCRIPT),
            connector_type,
            str(num_blocks),
            str(BLOCK_BYTES),
            str(SEED_BASE),
            "req-a",
            "req-b",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "KV_AUTH_KEY_FILE": str(key_path)},
        )
    arena = KvArena(num_blocks, BLOCK_BYTES)
    importer = create_connector(connector_type, {})
    # The graph's key, shared through a file as a mounted Secret would be.
    await importer.start(arena, "decode-0", auth_key=KvAuthKey.from_file(key_path))
    try:
        handles: list[KvHandle] = []
        for _ in range(2):
            kind, _, body = (await read_line(process)).partition(" ")
            assert kind == "handle", stderr_path.read_text()
            message = json_format.ParseDict(json.loads(body), worker_pb2.KvHandle())
            handles.append(KvHandle.from_proto(message))
        dest_ids = list(range(num_blocks))
        assert await importer.receive(handles[0], dest_ids) == num_blocks * BLOCK_BYTES
        # The exporter sent its blocks in reverse order: local block i is its block 7 - i.
        for dst in dest_ids:
            assert read_block(arena, dst) == expected_block(SEED_BASE + num_blocks - 1 - dst)
        assert await read_line(process) == "done req-a"
        # Then the exporter process dies: pulling its other export fails, not hangs.
        process.kill()
        await process.wait()
        with pytest.raises(KvTransferError, match="peer gone"):
            await importer.receive(handles[1], dest_ids, timeout_s=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await importer.close()
        arena.close()


# -- shared exporter checks (the same code for every connector: tcp stands for all) --------


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["tcp"], indirect=True)
async def test_describe_refuses_bad_exports(pair: ConnectorPair) -> None:
    with pytest.raises(ValueError, match="block_ids: 16 outside the arena's 16 blocks"):
        pair.exporter.describe("r", [0, 16], num_tokens=32)
    pair.exporter.describe("r", [0], num_tokens=16)
    with pytest.raises(ValueError, match="request_id 'r' is already exported"):
        pair.exporter.describe("r", [1], num_tokens=16)
    with pytest.raises(RuntimeError, match="only be started once"):
        await pair.exporter.start(pair.source, "again")


@pytest.mark.asyncio
async def test_unstarted_connector_has_no_address() -> None:
    connector = create_connector("tcp", {})
    with pytest.raises(RuntimeError, match="tcp connector is not started"):
        connector.describe("r", [0], num_tokens=1)
    await connector.close()
    await connector.close()  # idempotent, even without start


# -- data-plane specifics -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["mooncake"], indirect=True)
async def test_mooncake_failed_write_is_an_error_and_the_export_stays(pair: ConnectorPair) -> None:
    # Point the exporter at a handshake port nobody listens on: Mooncake returns -1.
    real_segment = pair.importer._segment  # type: ignore[attr-defined]
    pair.importer._segment = "127.0.0.1:1"  # type: ignore[attr-defined]
    handle = pair.exporter.describe("req-m", [0, 1], num_tokens=32)
    with pytest.raises(KvTransferError, match=r"Mooncake write of req-m .* returned -1"):
        await pair.importer.receive(handle, [4, 5])
    assert pair.done == []
    pair.importer._segment = real_segment  # type: ignore[attr-defined]
    assert await pair.importer.receive(handle, [4, 5]) == 2 * BLOCK_BYTES
    assert pair.done == ["req-m"]


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["nccl"], indirect=True)
async def test_nccl_rebuilds_a_group_the_exporter_forgot(pair: ConnectorPair) -> None:
    await pair.importer.receive(pair.exporter.describe("req-1", [0], num_tokens=16), [0])
    # Stands in for an exporter that dropped the pair's group after an error.
    pair.exporter._served_groups.clear()  # type: ignore[attr-defined]
    handle = pair.exporter.describe("req-2", [1, 2], num_tokens=32)
    assert await pair.importer.receive(handle, [5, 6]) == 2 * BLOCK_BYTES
    assert read_block(pair.dest, 6) == read_block(pair.source, 2)
    assert pair.done == ["req-1", "req-2"]


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["nccl"], indirect=True)
async def test_nccl_refuses_a_handle_from_another_backend(pair: ConnectorPair) -> None:
    handle = pair.exporter.describe("req-b", [0], num_tokens=16)
    foreign = dataclasses.replace(handle, params={**handle.params, "backend": "nccl"})
    with pytest.raises(KvTransferError, match="uses backend 'nccl', this worker 'gloo'"):
        await pair.importer.receive(foreign, [0])


@pytest.mark.asyncio
async def test_nccl_backend_without_cuda_fails_at_start_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = importlib.import_module("torch")  # untyped on purpose: mypy skips torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    arena = KvArena(1, 64)
    connector = create_connector("nccl", {"backend": "nccl"})
    with pytest.raises(ValueError, match="backend: 'nccl' needs CUDA"):
        await connector.start(arena, "w")
    with pytest.raises(RuntimeError, match="only be started once"):
        await connector.start(arena, "w")
    await connector.close()
    arena.close()
