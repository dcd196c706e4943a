"""KV over torch.distributed point-to-point: NCCL on GPUs, gloo on CPU machines.

There is no global `init_process_group`: each (exporter, importer) pair gets its own
2-rank group, built once and cached. The exporter hosts a `TCPStore` (its port is in
every handle); a pair rendezvouses under a `PrefixStore` named by a key the importer
invents, exporter rank 0, importer rank 1.

    importer                                     exporter
    PullRequest{group, new_group, tag} ────────►
                      ◄────────────────────────  PullReply{ok}          (accepted)
    [new group: both build it, collectively]
    recv(tag) into a staging tensor   ◄════════  send(tag) of blocks [skip:] as one tensor
                      ◄────────────────────────  PullReply{ok}          (sent)
    scatter into dest blocks, verify checksums

Each pull on a group uses its own tag, so concurrent pulls between the same pair
never match each other's tensors. Group setup and send/recv block, so they run on
the connector's threads and the event loop keeps serving. Any failure after the
accept drops the pair's group on that side; an importer whose cached group the
exporter no longer knows gets `unknown_group` and rebuilds once.

torch is optional (`triskel[nccl]`) and imported only when this connector starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.base import ControlChannelConnector
from triskel.workers.kv.connector import KvTransferError
from triskel.workers.kv.control import (
    FrameChannel,
    PullReply,
    PullRequest,
    parse_address,
)
from triskel.workers.kv.exports import Export
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.pull_checks import require_ok
from triskel.workers.kv.torch_p2p import BACKENDS, PeerGroup, TorchP2p

_KNOWN_PARAMS = ("backend", "timeout_s")


class NcclConnector(ControlChannelConnector):
    """Params: `backend` (gloo | nccl; default nccl with CUDA, else gloo), `timeout_s`
    (bound on group setup and each send / recv, default 30)."""

    type_name = "nccl"

    def __init__(self, backend: str | None = None, timeout_s: float = 30.0) -> None:
        super().__init__()
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"kvConnector.params.backend: {backend!r} is not one of {BACKENDS}")
        if not timeout_s > 0:
            raise ValueError(f"kvConnector.params.timeout_s: must be > 0, got {timeout_s}")
        self._requested_backend = backend
        self._timeout = timedelta(seconds=timeout_s)
        self._p2p: TorchP2p | None = None
        self._store: Any = None
        self._store_port = 0
        self._served_groups: dict[str, Any] = {}
        self._peer_groups: dict[str, PeerGroup] = {}
        self._peer_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> NcclConnector:
        for name in params:
            if name not in _KNOWN_PARAMS:
                raise ValueError(
                    f"kvConnector.params: unknown param {name!r} for nccl "
                    f"(known: {', '.join(_KNOWN_PARAMS)})"
                )
        try:
            timeout_s = float(params.get("timeout_s", "30"))
        except ValueError as error:
            raise ValueError(
                f"kvConnector.params.timeout_s: {params['timeout_s']!r} is not a number"
            ) from error
        return cls(backend=params.get("backend"), timeout_s=timeout_s)

    # -- data plane lifecycle --------------------------------------------------------

    async def _start_data_plane(self, arena: KvArena, host: str) -> None:
        # Importing torch takes seconds: keep the event loop serving meanwhile.
        p2p = await self._run_blocking(
            lambda: TorchP2p(self._requested_backend, host, self._timeout)
        )
        self._store, self._store_port = await self._run_blocking(p2p.host_store)
        self._p2p = p2p

    @property
    def p2p(self) -> TorchP2p:
        if self._p2p is None:
            raise RuntimeError("nccl connector is not started")
        return self._p2p

    async def _close_data_plane(self) -> None:
        # Group and store destructors close sockets and join threads: run them on a
        # worker thread by letting the last references go there.
        last_references: list[Any] = [
            *self._served_groups.values(),
            *self._peer_groups.values(),
            self._store,
        ]
        self._served_groups.clear()
        self._peer_groups.clear()
        self._store = None
        await self._run_blocking(last_references.clear)

    def _handle_params(self) -> Mapping[str, str]:
        return {"backend": self.p2p.backend, "store_port": str(self._store_port)}

    # -- exporter --------------------------------------------------------------------

    async def send(self, channel: FrameChannel, export: Export, request: PullRequest) -> None:
        try:
            key = request.params["group"]
            is_new_group = request.params["new_group"] == "1"
            tag = int(request.params["tag"])
        except (KeyError, ValueError) as error:
            await channel.send_frame(
                PullReply.refusal_frame(f"bad nccl pull: {error!r}", "bad_request")
            )
            raise KvTransferError(f"bad nccl pull of {request.request_id}") from error
        if not is_new_group and key not in self._served_groups:
            await channel.send_frame(
                PullReply.refusal_frame(f"unknown process group {key}", "unknown_group")
            )
            raise KvTransferError(f"pull of {request.request_id} names unknown group {key}")
        num_bytes = request.num_pulled_bytes
        await channel.send_frame(PullReply(ok=True, num_bytes=num_bytes).to_frame())
        block_ids = export.block_ids[request.skip_blocks :]
        try:
            if is_new_group:
                self._served_groups[key] = await self._run_blocking(
                    lambda: self.p2p.new_group(self._store, key, rank=0)
                )
            group = self._served_groups[key]
            if num_bytes:
                await self._run_blocking(
                    lambda: self.p2p.send_blocks(group, self.arena, block_ids, tag)
                )
        except RuntimeError as error:
            self._served_groups.pop(key, None)
            message = f"nccl send of {request.request_id} failed: {error}"
            await channel.send_frame(PullReply.refusal_frame(message, "transfer_failed"))
            raise KvTransferError(message) from error
        await channel.send_frame(PullReply(ok=True, num_bytes=num_bytes).to_frame())

    # -- importer --------------------------------------------------------------------

    async def _pull(self, handle: KvHandle, request: PullRequest) -> int:
        their_backend = handle.params.get("backend", "")
        if their_backend != self.p2p.backend:
            raise KvTransferError(
                f"KV handle {handle.request_id} uses backend {their_backend!r}, "
                f"this worker {self.p2p.backend!r}"
            )
        num_bytes = await self._pull_with_cached_group(handle, request)
        if num_bytes is not None:
            return num_bytes
        lock = self._peer_locks.setdefault(handle.address, asyncio.Lock())
        async with lock:  # one group build per exporter at a time
            num_bytes = await self._pull_with_cached_group(handle, request)
            if num_bytes is not None:
                return num_bytes
            return await self._pull_once(handle, request, None)

    async def _pull_with_cached_group(self, handle: KvHandle, request: PullRequest) -> int | None:
        """Pull over the cached group; None when there is none the exporter still knows."""
        peer = self._peer_groups.get(handle.address)
        if peer is None:
            return None
        try:
            return await self._pull_once(handle, request, peer)
        except _StaleGroup:
            return None  # the exporter restarted or dropped the group: build a new one

    async def _pull_once(
        self, handle: KvHandle, request: PullRequest, peer: PeerGroup | None
    ) -> int:
        """One pull; builds the group with the exporter first when `peer` is None."""
        key = uuid.uuid4().hex if peer is None else peer.key
        tag = 0 if peer is None else peer.take_tag()
        request = dataclasses.replace(
            request,
            params={"group": key, "new_group": "1" if peer is None else "0", "tag": str(tag)},
        )
        try:
            channel = await self._open_channel(handle.address)
        except OSError:
            if peer is not None:  # the exporter is gone, and its group with it
                self._drop_peer(handle.address, peer)
            raise
        try:
            accepted = await self._exchange(channel, request)
            if accepted.code == "unknown_group" and peer is not None:
                self._drop_peer(handle.address, peer)
                raise _StaleGroup(key)
            # A refusal (unknown export, size) comes before any tensor: the group stays.
            require_ok(accepted, request, handle.address)
            staging = await self._receive_accepted(channel, handle, request, peer, key, tag)
        finally:
            channel.close()
        if staging is not None:
            await self._run_blocking(
                lambda: self.p2p.scatter(
                    staging, self.arena, request.dest_block_ids[request.skip_blocks :]
                )
            )
        return request.num_pulled_bytes

    async def _receive_accepted(
        self,
        channel: FrameChannel,
        handle: KvHandle,
        request: PullRequest,
        peer: PeerGroup | None,
        key: str,
        tag: int,
    ) -> Any:
        """Join the group if new, receive the staging tensor, await the exporter's "sent".

        Any failure here leaves the pair's group in an unknown state, so it is dropped.
        """
        is_new_group = peer is None
        try:
            if peer is None:
                peer = await self._run_blocking(lambda: self._join_group(handle, key))
            staging = None
            if request.num_pulled_bytes:
                group = peer.group
                staging = await self._run_blocking(
                    lambda: self.p2p.recv_bytes(group, request.num_pulled_bytes, tag)
                )
            sent = PullReply.from_frame(await channel.recv_frame())
            require_ok(sent, request, handle.address)
            if is_new_group:
                # Cached only now: the exporter registers the group before it says
                # "sent", so a pull reusing it can never find the exporter unaware.
                self._peer_groups[handle.address] = peer
        except BaseException as error:
            if peer is not None:
                self._drop_peer(handle.address, peer)
            if isinstance(error, RuntimeError):  # how torch.distributed fails
                raise KvTransferError(
                    f"nccl pull of {handle.request_id} from {handle.address} failed: {error}"
                ) from error
            raise
        return staging

    def _join_group(self, handle: KvHandle, key: str) -> PeerGroup:
        host, _ = parse_address(handle.address)
        store = self.p2p.connect_store(host, int(handle.params["store_port"]))
        return PeerGroup(key=key, group=self.p2p.new_group(store, key, rank=1), store=store)

    def _drop_peer(self, address: str, peer: PeerGroup) -> None:
        if self._peer_groups.get(address) is peer:
            del self._peer_groups[address]


class _StaleGroup(Exception):
    """The exporter no longer knows the importer's cached group."""
