"""KV over the Mooncake transfer engine (TCP on CPU machines, RDMA on real clusters).

    importer                                   exporter
    PullRequest{segment, arena_base} ────────►
                                               batch_transfer_sync_write(
                                                 exporter blocks ──► importer blocks)
                     ◄──────────────────────── PullReply{ok | error}
    verify checksums

Both sides register their whole arena once at start. The exporter WRITES into the
importer's arena rather than the importer reading, because then the side that owns
the source blocks also owns the transfer: it knows exactly when its blocks are no
longer needed (`on_export_done` right after a successful write, one control round
trip in all), and an export can never be freed and reused while a remote reader is
still copying it. A read would need a second message to report completion.

Mooncake reports failures as -1 return codes (within a millisecond when the peer is
gone) and hangs until `MC_TRANSFER_TIMEOUT` seconds when the peer stalls, so that
variable gets a bound before the engine starts. See Mooncake (Qin et al., FAST '25).

Mooncake's own listeners take no bind address; `listeners` keeps them on loopback
when the KV host is. They are unauthenticated (anyone reaching them can read or write
the registered arena), so they must never be reachable beyond the graph's workers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from triskel.workers.kv.arena import KvArena, paired_runs
from triskel.workers.kv.base import ControlChannelConnector
from triskel.workers.kv.connector import KvTransferError
from triskel.workers.kv.control import (
    FrameChannel,
    PullReply,
    PullRequest,
    format_address,
)
from triskel.workers.kv.exports import Export
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.listeners import is_loopback, pin_to_loopback, wildcard_listeners
from triskel.workers.kv.pull_checks import require_ok

log = logging.getLogger(__name__)

_PROTOCOLS = ("tcp", "rdma")
# Seconds a stalled transfer may hang inside Mooncake; below the importer's default
# 30 s pull timeout so a late write cannot land after the importer gave up.
_DEFAULT_TRANSFER_TIMEOUT_S = "10"


class MooncakeConnector(ControlChannelConnector):
    """Params: `protocol` (tcp | rdma, default tcp), `device` (RDMA NICs, default auto)."""

    type_name = "mooncake"

    def __init__(self, protocol: str = "tcp", device: str = "") -> None:
        super().__init__()
        if protocol not in _PROTOCOLS:
            raise ValueError(
                f"kvConnector.params.protocol: {protocol!r} is not one of {_PROTOCOLS}"
            )
        self._protocol = protocol
        self._device = device
        self._engine: Any = None
        self._segment = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> MooncakeConnector:
        for name in params:
            if name not in ("protocol", "device"):
                raise ValueError(
                    f"kvConnector.params: unknown param {name!r} for mooncake "
                    "(known: protocol, device)"
                )
        return cls(protocol=params.get("protocol", "tcp"), device=params.get("device", ""))

    async def _start_data_plane(self, arena: KvArena, host: str) -> None:
        os.environ.setdefault("MC_TRANSFER_TIMEOUT", _DEFAULT_TRANSFER_TIMEOUT_S)
        # Imported here: the native library needs libibverbs & co., which only
        # workers configured for Mooncake should have to load.
        from mooncake.engine import TransferEngine

        engine = TransferEngine()
        listeners_before = wildcard_listeners()
        status = await self._run_blocking(
            lambda: engine.initialize(host, "P2PHANDSHAKE", self._protocol, self._device)
        )
        if status != 0:
            raise RuntimeError(
                f"Mooncake initialize(host={host!r}, protocol={self._protocol!r}) returned {status}"
            )
        if is_loopback(host):
            pin_to_loopback(skip=listeners_before)
        else:
            log.info("Mooncake listens on every interface of this host (it takes no bind address)")
        status = engine.register_memory(arena.base_address, arena.total_bytes)
        if status != 0:
            raise RuntimeError(
                f"Mooncake register_memory of {arena.total_bytes} bytes returned {status}"
            )
        self._engine = engine
        self._segment = format_address(host, engine.get_rpc_port())

    async def _close_data_plane(self) -> None:
        if self._engine is None:
            return
        self._engine.unregister_memory(self.arena.base_address)
        # The engine's destructor joins its handshake thread while holding the GIL
        # (about a second; no thread can hide that), which is tolerable at shutdown.
        self._engine = None

    def _handle_params(self) -> Mapping[str, str]:
        return {"protocol": self._protocol, "segment": self._segment}

    async def send(self, channel: FrameChannel, export: Export, request: PullRequest) -> None:
        arena = self.arena
        try:
            segment = request.params["segment"]
            dest_base_address = int(request.params["arena_base"])
            if request.params["protocol"] != self._protocol:
                raise ValueError(f"protocol {request.params['protocol']!r} != {self._protocol!r}")
        except (KeyError, ValueError) as error:
            await channel.send_frame(
                PullReply.refusal_frame(f"bad mooncake pull params: {error!r}", "bad_request")
            )
            raise KvTransferError(f"bad mooncake pull of {request.request_id}") from error
        runs = paired_runs(
            export.block_ids[request.skip_blocks :],
            request.dest_block_ids[request.skip_blocks :],
        )
        src_addresses = [arena.address(src) for src, _, _ in runs]
        dst_addresses = [dest_base_address + dst * arena.block_bytes for _, dst, _ in runs]
        lengths = [count * arena.block_bytes for _, _, count in runs]
        engine = self._engine
        if runs:
            status = await self._run_blocking(
                lambda: engine.batch_transfer_sync_write(
                    segment, src_addresses, dst_addresses, lengths
                )
            )
            if status != 0:
                message = f"Mooncake write of {request.request_id} to {segment} returned {status}"
                await channel.send_frame(PullReply.refusal_frame(message, "transfer_failed"))
                raise KvTransferError(message)
        await channel.send_frame(PullReply(ok=True, num_bytes=request.num_pulled_bytes).to_frame())

    async def _pull(self, handle: KvHandle, request: PullRequest) -> int:
        their_protocol = handle.params.get("protocol", "")
        if their_protocol != self._protocol:
            raise KvTransferError(
                f"KV handle {handle.request_id} uses Mooncake protocol {their_protocol!r}, "
                f"this worker {self._protocol!r}"
            )
        request = dataclasses.replace(
            request,
            params={
                "segment": self._segment,
                "arena_base": str(self.arena.base_address),
                "protocol": self._protocol,
            },
        )
        channel = await self._open_channel(handle.address)
        try:
            reply = await self._exchange(channel, request)
        finally:
            channel.close()
        require_ok(reply, request, handle.address)
        return request.num_pulled_bytes
