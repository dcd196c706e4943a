"""What every connector shares: exports, the control listener, pull checks, checksums.

A concrete connector only supplies its data plane:

    exporter: send(channel, export, request)   push the blocks, reply on `channel`
    importer: _pull(handle, request)            get the blocks into the arena
    both:     _start_data_plane / _close_data_plane / _handle_params

Everything else (the export table, the control listener, capabilities, timeouts,
mapping socket errors to KvTransferError, running the checks of `pull_checks` on
both ends and verifying every received block) lives here once.

An exporter serves one pull per connection, in this order:

    challenge ──► pull frame (within CONTROL_READ_TIMEOUT_S) ──► proof of the key
    ──► capability (request, exporter, expiry) ──► claim the export (its nonce)
    ──► size checks ──► send

Until the capability holds, every refusal says only "refused": a peer that has not
shown the key and the token learns nothing about the exports (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import (
    CapabilityRefused,
    KvAuthKey,
    new_challenge,
    process_key,
)
from triskel.workers.kv.connector import KvConnector, KvTransferError
from triskel.workers.kv.control import (
    CONTROL_READ_TIMEOUT_S,
    ControlServer,
    FrameChannel,
    PullReply,
    PullRequest,
    challenge_frame,
    open_channel,
    parse_challenge,
)
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.exports import Export, ExportTable, ExportUnavailable
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.pull_checks import build_pull_request, request_problem, verify_blocks

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Verifying more than this many bytes runs in a thread, off the event loop
# (XXH3 hashes ~10 GB/s, so 8 MiB stalls the loop for under a millisecond).
_INLINE_VERIFY_BYTES = 8 << 20
_MAX_BLOCKING_THREADS = 8


class ControlChannelConnector(KvConnector):
    """A `KvConnector` whose pulls are negotiated over the shared control channel."""

    def __init__(self) -> None:
        self._exports = ExportTable()
        self._server = ControlServer(self._serve_connection)
        self._arena: KvArena | None = None
        self._worker_id = ""
        self._host = ""
        self._key = process_key()
        self._tls: KvTls | None = None
        # How long a connected peer may take to send its pull frame.
        self.control_read_timeout_s = CONTROL_READ_TIMEOUT_S
        self._is_closed = False
        # Data-plane calls that block (Mooncake, gloo) run here; `close` waits for
        # them, since they read or write the arena through raw pointers.
        self._executor: ThreadPoolExecutor | None = None
        self._blocking_calls: set[asyncio.Future[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------

    async def start(
        self,
        arena: KvArena,
        worker_id: str,
        host: str = "127.0.0.1",
        auth_key: KvAuthKey | None = None,
        tls: KvTls | None = None,
    ) -> None:
        if self._arena is not None or self._is_closed:
            raise RuntimeError(f"{self.type_name} connector can only be started once")
        self._arena, self._worker_id, self._host = arena, worker_id, host
        if auth_key is not None:
            self._key = auth_key
        if tls is not None:
            self._tls = tls
            self._server.tls = tls.server.context
            tls.start()
        self._executor = ThreadPoolExecutor(
            _MAX_BLOCKING_THREADS, thread_name_prefix=f"kv-{self.type_name}"
        )
        try:
            await self._start_data_plane(arena, host)
            await self._server.start(host)
        except BaseException:
            await self.close()
            raise

    @property
    def address(self) -> str:
        if not self._server.address:
            raise RuntimeError(f"{self.type_name} connector is not started")
        return self._server.address

    @property
    def arena(self) -> KvArena:
        if self._arena is None:
            raise RuntimeError(f"{self.type_name} connector is not started")
        return self._arena

    async def close(self) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        await self._server.close()
        if self._tls is not None:
            await self._tls.aclose()
        if self._blocking_calls:
            await asyncio.wait(list(self._blocking_calls))
        if self._arena is not None:
            await self._close_data_plane()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._exports.clear()

    # -- exporter --------------------------------------------------------------------

    def describe(
        self, request_id: str, block_ids: Sequence[int], num_tokens: int, ttl_s: float = 30.0
    ) -> KvHandle:
        arena = self.arena
        if self._is_closed:
            raise RuntimeError(f"{self.type_name} connector is closed")
        for block_id in block_ids:
            if not 0 <= block_id < arena.num_blocks:
                raise ValueError(
                    f"block_ids: {block_id} outside the arena's {arena.num_blocks} blocks "
                    f"(request {request_id})"
                )
        checksums = [arena.checksum(block_id) for block_id in block_ids]
        expires_ms = _now_ms() + round(ttl_s * 1000)
        capability = self._key.mint(request_id, self._worker_id, expires_ms)
        export = self._exports.add(request_id, block_ids, checksums, capability.nonce)
        return KvHandle(
            request_id=request_id,
            worker_id=self._worker_id,
            connector=self.type_name,
            address=self.address,
            num_tokens=num_tokens,
            block_bytes=arena.block_bytes,
            block_checksums=export.block_checksums,
            params=self._handle_params(),
            capability=capability.token,
        )

    def on_export_done(self, callback: Callable[[str], None]) -> None:
        self._exports.on_done(callback)

    def withdraw(self, request_id: str) -> bool:
        return self._exports.withdraw(request_id)

    async def _serve_connection(self, channel: FrameChannel) -> None:
        """One pull per connection (every importer opens one per pull)."""
        challenge = new_challenge()
        await channel.send_frame(challenge_frame(challenge))
        frame = await channel.recv_frame(timeout_s=self.control_read_timeout_s)
        try:
            request = PullRequest.from_frame(frame)
            nonce = self._authorize(request, challenge)
        except (ValueError, CapabilityRefused) as error:
            reason = error.reason if isinstance(error, CapabilityRefused) else str(error)
            log.warning("KV pull refused: %s", reason)
            await channel.send_frame(PullReply.refused_frame())
            return
        await self._serve_pull(channel, request, nonce)

    def _authorize(self, request: PullRequest, challenge: bytes) -> bytes:
        """The capability's nonce; CapabilityRefused unless the puller holds the key
        and this export's live token."""
        rid = request.request_id
        if not self._key.check_proof(request.proof, challenge, rid, request.capability):
            raise CapabilityRefused(f"pull of {rid} without proof of the KV key")
        return self._key.check(request.capability, rid, self._worker_id, _now_ms())

    async def _serve_pull(self, channel: FrameChannel, request: PullRequest, nonce: bytes) -> None:
        try:
            export = self._exports.claim(request.request_id, nonce)
        except ExportUnavailable as error:
            await channel.send_frame(PullReply.refusal_frame(str(error), "unavailable"))
            return
        problem = request_problem(export, request, self.arena.block_bytes)
        if problem:
            self._exports.release(export)
            await channel.send_frame(PullReply.refusal_frame(problem, "bad_request"))
            return
        try:
            await self.send(channel, export, request)
        except (KvTransferError, OSError) as error:
            self._exports.release(export)
            log.warning("KV send of %s failed: %s", request.request_id, error)
            return
        except BaseException:
            self._exports.release(export)
            raise
        self._exports.complete(export)

    # -- importer --------------------------------------------------------------------

    async def receive(
        self,
        handle: KvHandle,
        dest_block_ids: Sequence[int],
        *,
        skip_blocks: int = 0,
        timeout_s: float = 30.0,
    ) -> int:
        if self._is_closed:
            raise KvTransferError(f"{self.type_name} connector is closed")
        request = build_pull_request(
            handle, dest_block_ids, skip_blocks, self.arena, self.type_name
        )
        where = f"KV of request {handle.request_id} from {handle.address}"
        try:
            async with asyncio.timeout(timeout_s):
                num_bytes = await self._pull(handle, request)
                await self._verify(handle, request)
        except TimeoutError as error:
            raise KvTransferError(f"timed out after {timeout_s} s pulling {where}") from error
        except OSError as error:
            raise KvTransferError(f"peer gone while pulling {where}: {error!r}") from error
        except ValueError as error:
            raise KvTransferError(f"bad control reply while pulling {where}: {error}") from error
        return num_bytes

    async def _exchange(self, channel: FrameChannel, request: PullRequest) -> PullReply:
        """Answer the exporter's challenge with the pull and a proof of the key, and
        read its first reply (not checked)."""
        challenge = parse_challenge(await channel.recv_frame())
        proof = self._key.prove(challenge, request.request_id, request.capability)
        await channel.send_frame(dataclasses.replace(request, proof=proof).to_frame())
        return PullReply.from_frame(await channel.recv_frame())

    async def _open_channel(self, address: str) -> FrameChannel:
        """A control connection to an exporter, over mutual TLS when this worker has it."""
        return await open_channel(address, None if self._tls is None else self._tls.client.context)

    async def _verify(self, handle: KvHandle, request: PullRequest) -> None:
        if request.num_pulled_bytes > _INLINE_VERIFY_BYTES:
            await asyncio.to_thread(verify_blocks, self.arena, handle, request)
        else:
            verify_blocks(self.arena, handle, request)

    # -- helpers for data planes -----------------------------------------------------

    async def _run_blocking(self, function: Callable[[], _T]) -> _T:
        """Run `function` on the connector's threads; `close` waits for it to return."""
        if self._executor is None:
            raise RuntimeError(f"{self.type_name} connector is not started")
        future = asyncio.get_running_loop().run_in_executor(self._executor, function)
        self._blocking_calls.add(future)
        future.add_done_callback(self._blocking_calls.discard)
        # shield: a cancelled caller must not hide the call from `close`.
        return await asyncio.shield(future)

    # -- the data plane --------------------------------------------------------------

    @abstractmethod
    async def _start_data_plane(self, arena: KvArena, host: str) -> None:
        """Register `arena` with the transport (called before the listener binds)."""

    @abstractmethod
    async def _close_data_plane(self) -> None:
        """Unregister and release the transport (no other blocking call is running)."""

    @abstractmethod
    def _handle_params(self) -> Mapping[str, str]:
        """Transport specifics every handle from this exporter carries."""

    @abstractmethod
    async def send(self, channel: FrameChannel, export: Export, request: PullRequest) -> None:
        """EXPORTER: push blocks `[request.skip_blocks:]` of `export` and reply on `channel`.

        Called by the control server with the export claimed and the request checked.
        Raises (KvTransferError, OSError) when the push failed; the export stays.
        """

    @abstractmethod
    async def _pull(self, handle: KvHandle, request: PullRequest) -> int:
        """IMPORTER: move the blocks into `request.dest_block_ids`; return bytes moved.

        Runs under the caller's timeout; checksums are verified afterwards.
        """


def _now_ms() -> int:
    # Monotonic: only this process mints and checks its tokens' expiry.
    return time.monotonic_ns() // 1_000_000
