from __future__ import annotations

import dataclasses

import pytest

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.connector import KvHandleGone, KvTransferError
from triskel.workers.kv.control import PullReply, PullRequest
from triskel.workers.kv.exports import Export
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.pull_checks import (
    build_pull_request,
    request_problem,
    require_ok,
    verify_blocks,
)

HANDLE = KvHandle("r", "p0", "tcp", "127.0.0.1:9", 40, 64, (11, 22, 33))


@pytest.fixture
def arena() -> KvArena:
    return KvArena(4, 64)


def test_build_pull_request(arena: KvArena) -> None:
    request = build_pull_request(HANDLE, [3, 0, 1], 1, arena, "tcp")
    assert request == PullRequest("r", 3, 1, 64, (3, 0, 1))
    assert request.num_pulled_bytes == 2 * 64  # blocks 1 and 2 of the handle


@pytest.mark.parametrize(
    ("handle", "dest", "skip", "message"),
    [
        (dataclasses.replace(HANDLE, connector="nccl"), [0, 1, 2], 0, "for connector 'nccl'"),
        (HANDLE, [0, 1], 0, "has 3 blocks, dest_block_ids has 2"),
        (dataclasses.replace(HANDLE, block_bytes=128), [0, 1, 2], 0, "blocks of 128 bytes"),
        (HANDLE, [0, 1, 2], 4, r"skip_blocks 4 outside \[0, 3\]"),
        (HANDLE, [0, 1, 4], 0, "dest_block_ids: 4 outside the arena's 4 blocks"),
    ],
)
def test_build_pull_request_names_the_misfit(
    arena: KvArena, handle: KvHandle, dest: list[int], skip: int, message: str
) -> None:
    with pytest.raises(KvTransferError, match=message):
        build_pull_request(handle, dest, skip, arena, "tcp")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (PullRequest("r", 3, 0, 64, (0, 1, 2)), ""),
        # Skipping every block is a valid (empty) pull: the decode worker had it all.
        (PullRequest("r", 3, 3, 64, (0, 1, 2)), ""),
        (PullRequest("r", 2, 0, 64, (0, 1)), "has 3 blocks, the pull expects 2"),
        (PullRequest("r", 3, 0, 32, (0, 1, 2)), "blocks of 64 bytes, the pull expects 32"),
        (PullRequest("r", 3, 0, 64, (0, 1)), "names 2 destination blocks"),
        (PullRequest("r", 3, -1, 64, (0, 1, 2)), "skip_blocks -1 outside"),
    ],
)
def test_request_problem(request_: PullRequest, message: str) -> None:
    export = Export("r", (5, 6, 7), (1, 2, 3), b"nonce")
    problem = request_problem(export, request_, block_bytes=64)
    assert (message in problem) if message else problem == ""


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (PullReply(ok=False, error="unknown or expired KV handle r"), "refused the pull: unknown"),
        (PullReply(ok=True, num_bytes=64), "offers 64 bytes of request r, the pull expects 128"),
    ],
)
def test_require_ok(reply: PullReply, message: str) -> None:
    request = PullRequest("r", 2, 0, 64, (0, 1))
    require_ok(PullReply(ok=True, num_bytes=128), request, "x:1")
    with pytest.raises(KvTransferError, match=message):
        require_ok(reply, request, "x:1")


@pytest.mark.parametrize(
    ("code", "is_gone"),
    [
        # The exporter's table has no such export: retrying the handle cannot help.
        ("unavailable", True),
        # A malformed pull or a failed transfer is not about the handle's freshness.
        ("bad_request", False),
        ("transfer_failed", False),
    ],
)
def test_require_ok_tells_a_stale_handle_apart(code: str, is_gone: bool) -> None:
    request = PullRequest("r", 2, 0, 64, (0, 1))
    with pytest.raises(KvTransferError) as raised:
        require_ok(PullReply(ok=False, error="no", code=code), request, "x:1")
    assert isinstance(raised.value, KvHandleGone) is is_gone


def test_verify_blocks_names_the_first_bad_block(arena: KvArena) -> None:
    for block_id in range(4):
        arena.fill_block(block_id, block_id)
    checksums = tuple(arena.checksum(b) for b in (2, 3, 1))
    handle = dataclasses.replace(HANDLE, block_checksums=checksums)
    request = PullRequest("r", 3, 0, 64, (2, 3, 1))
    verify_blocks(arena, handle, request)
    arena.fill_block(1, 99)
    with pytest.raises(KvTransferError, match="checksum mismatch at block 2 of request r"):
        verify_blocks(arena, handle, request)
    arena.fill_block(1, 1)
    # Skipped blocks are the importer's own cached prefix: not checked against the handle.
    arena.fill_block(2, 99)
    verify_blocks(arena, handle, dataclasses.replace(request, skip_blocks=1))
