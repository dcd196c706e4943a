"""What every connector shares: exports, the control listener, pull checks, checksums.

A concrete connector only supplies its data plane:

    exporter: send(channel, export, request)   push the blocks, reply on `channel`
    importer: _pull(handle, request)            get the blocks into the arena
    both:     _start_data_plane / _close_data_plane / _handle_params

Everything else (the export table, the control listener, timeouts, mapping socket
errors to KvTransferError, running the checks of `pull_checks` on both ends and
verifying every received block) lives here once.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.connector import KvConnector, KvTransferError
from triskel.workers.kv.control import (
    ChannelClosed,
    ControlServer,
    FrameChannel,
    PullReply,
    PullRequest,
)
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
        self._is_closed = False
        # Data-plane calls that block (Mooncake, gloo) run here; `close` waits for
        # them, since they read or write the arena through raw pointers.
        self._executor: ThreadPoolExecutor | None = None
        self._blocking_calls: set[asyncio.Future[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, arena: KvArena, worker_id: str, host: str = "127.0.0.1") -> None:
        if self._arena is not None or self._is_closed:
            raise RuntimeError(f"{self.type_name} connector can only be started once")
        self._arena, self._worker_id, self._host = arena, worker_id, host
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
        if self._blocking_calls:
            await asyncio.wait(list(self._blocking_calls))
        if self._arena is not None:
            await self._close_data_plane()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._exports.clear()

    # -- exporter --------------------------------------------------------------------

    def describe(self, request_id: str, block_ids: Sequence[int], num_tokens: int) -> KvHandle:
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
        export = self._exports.add(request_id, block_ids, checksums)
        return KvHandle(
            request_id=request_id,
            worker_id=self._worker_id,
            connector=self.type_name,
            address=self.address,
            num_tokens=num_tokens,
            block_bytes=arena.block_bytes,
            block_checksums=export.block_checksums,
            params=self._handle_params(),
        )

    def on_export_done(self, callback: Callable[[str], None]) -> None:
        self._exports.on_done(callback)

    def withdraw(self, request_id: str) -> bool:
        return self._exports.withdraw(request_id)

    async def _serve_connection(self, channel: FrameChannel) -> None:
        while True:
            try:
                frame = await channel.recv_frame()
            except ChannelClosed:
                return
            try:
                request = PullRequest.from_frame(frame)
            except ValueError as error:
                await channel.send_frame(
                    PullReply.refusal_frame(f"bad pull request: {error}", "bad_request")
                )
                return
            await self._serve_pull(channel, request)

    async def _serve_pull(self, channel: FrameChannel, request: PullRequest) -> None:
        try:
            export = self._exports.claim(request.request_id)
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
        """Send the pull and read the exporter's first reply (not checked)."""
        await channel.send_frame(request.to_frame())
        return PullReply.from_frame(await channel.recv_frame())

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
