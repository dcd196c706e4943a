"""Pure checks on a pull, shared by every connector: no I/O, only arenas and messages.

Both ends check what they can before a byte moves (a wrong-sized pull must fail
loudly, never land in the wrong blocks), and the importer checks every block it
received against the handle's checksums.
"""

from __future__ import annotations

from collections.abc import Sequence

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.connector import KvHandleGone, KvTransferError
from triskel.workers.kv.control import PullReply, PullRequest
from triskel.workers.kv.exports import Export
from triskel.workers.kv.handle import KvHandle


def build_pull_request(
    handle: KvHandle,
    dest_block_ids: Sequence[int],
    skip_blocks: int,
    arena: KvArena,
    connector_type: str,
) -> PullRequest:
    """IMPORTER: the pull for `handle` into `arena`; KvTransferError names what does not fit."""
    rid = handle.request_id
    if handle.connector != connector_type:
        raise KvTransferError(
            f"KV handle {rid} is for connector {handle.connector!r}, this is {connector_type!r}"
        )
    if len(dest_block_ids) != handle.num_blocks:
        raise KvTransferError(
            f"size mismatch: KV handle {rid} has {handle.num_blocks} blocks, "
            f"dest_block_ids has {len(dest_block_ids)}"
        )
    if handle.block_bytes != arena.block_bytes:
        raise KvTransferError(
            f"size mismatch: KV handle {rid} has blocks of {handle.block_bytes} bytes, "
            f"the local arena {arena.block_bytes}"
        )
    if not 0 <= skip_blocks <= handle.num_blocks:
        raise KvTransferError(f"skip_blocks {skip_blocks} outside [0, {handle.num_blocks}]")
    for block_id in dest_block_ids:
        if not 0 <= block_id < arena.num_blocks:
            raise KvTransferError(
                f"dest_block_ids: {block_id} outside the arena's {arena.num_blocks} blocks"
            )
    return PullRequest(
        request_id=rid,
        num_blocks=handle.num_blocks,
        skip_blocks=skip_blocks,
        block_bytes=handle.block_bytes,
        dest_block_ids=tuple(dest_block_ids),
        capability=handle.capability,
    )


def request_problem(export: Export, request: PullRequest, block_bytes: int) -> str:
    """EXPORTER: why it refuses `request` for `export`, or "" when the pull fits."""
    rid = request.request_id
    if request.num_blocks != export.num_blocks:
        return (
            f"size mismatch: KV handle {rid} has {export.num_blocks} blocks, "
            f"the pull expects {request.num_blocks}"
        )
    if request.block_bytes != block_bytes:
        return (
            f"size mismatch: KV handle {rid} has blocks of {block_bytes} bytes, "
            f"the pull expects {request.block_bytes}"
        )
    if len(request.dest_block_ids) != export.num_blocks:
        return f"pull of {rid} names {len(request.dest_block_ids)} destination blocks"
    if not 0 <= request.skip_blocks <= export.num_blocks:
        return f"skip_blocks {request.skip_blocks} outside [0, {export.num_blocks}]"
    return ""


def require_ok(reply: PullReply, request: PullRequest, exporter_address: str) -> None:
    """IMPORTER: KvTransferError with the exporter's reason, or on an unexpected size.

    KvHandleGone when the exporter has no such export (code "unavailable") or refused
    the capability (code "refused": expired, used, or the workers' keys differ), so
    callers can tell a stale handle from a transfer that may work on a retry.
    """
    if not reply.ok and reply.code == "refused":
        raise KvHandleGone(
            f"exporter {exporter_address} refused the pull of {request.request_id}: its "
            "capability is unknown or expired, or the two workers hold different KV auth keys"
        )
    if not reply.ok and reply.code == "unavailable":
        raise KvHandleGone(f"exporter {exporter_address} refused the pull: {reply.error}")
    if not reply.ok:
        raise KvTransferError(f"exporter {exporter_address} refused the pull: {reply.error}")
    if reply.num_bytes != request.num_pulled_bytes:
        raise KvTransferError(
            f"size mismatch: exporter {exporter_address} offers {reply.num_bytes} bytes of "
            f"request {request.request_id}, the pull expects {request.num_pulled_bytes}"
        )


def verify_blocks(arena: KvArena, handle: KvHandle, request: PullRequest) -> None:
    """IMPORTER: KvTransferError at the first received block whose checksum is wrong."""
    for index in range(request.skip_blocks, request.num_blocks):
        block_id = request.dest_block_ids[index]
        expected, actual = handle.block_checksums[index], arena.checksum(block_id)
        if actual != expected:
            raise KvTransferError(
                f"checksum mismatch at block {index} of request {handle.request_id} "
                f"(local block {block_id}): expected {expected:#018x}, got {actual:#018x}"
            )
