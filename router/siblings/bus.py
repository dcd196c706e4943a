"""Unix-socket links between sibling router processes: each listens on its own socket
and keeps one outgoing connection to every other, re-made when a sibling restarts.

Sending never waits: the frames of one turn of the event loop go out together at its
end (one write per sibling, not one per frame), or are dropped (and counted) when the
sibling is not connected or reads too slowly. What is shared is made for that: load
shares are whole shares (the next one corrects a lost one, and a new connection gets
them all again), and a pick missed while a sibling starts costs that sibling one
prompt's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from triskel.router.siblings import frames
from triskel.router.siblings.config import SiblingsConfig
from triskel.router.siblings.frames import FrameError, LoadShare, SharedPick

_log = logging.getLogger(__name__)

# Buffered bytes beyond which a slow sibling's frames are dropped rather than queued.
MAX_BUFFER_BYTES = 8 * 1024 * 1024
# A connect to a socket nobody listens on fails at once: retrying often is cheap, and
# keeps the window in which a starting sibling misses picks short.
_RECONNECT_INITIAL_S = 0.005
_RECONNECT_MAX_S = 0.05


class SiblingBus:
    """One process's links to its siblings (`SiblingsConfig`)."""

    def __init__(
        self,
        config: SiblingsConfig,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
        on_dropped: Callable[[int], None] = lambda _num_frames: None,
    ) -> None:
        self.config = config
        self.dropped = 0  # frames a sibling did not get (not connected, or too slow)
        self._on_dropped = on_dropped  # e.g. the router's counter of them
        self._max_buffer_bytes = max_buffer_bytes
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._served: set[asyncio.StreamWriter] = set()  # siblings' connections to us
        self._pending: dict[int, list[bytes]] = {}  # frames for the end of this turn
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._load_handlers: list[Callable[[int, LoadShare], None]] = []
        self._pick_handlers: list[Callable[[int, SharedPick], None]] = []
        self._metrics_handlers: list[Callable[[int, str], None]] = []
        self._gone_handlers: list[Callable[[int], None]] = []
        self._connected_handlers: list[Callable[[int], None]] = []
        self._linked: dict[int, asyncio.Event] = {i: asyncio.Event() for i in config.others}

    def on_load(self, handler: Callable[[int, LoadShare], None]) -> None:
        self._load_handlers.append(handler)

    def on_pick(self, handler: Callable[[int, SharedPick], None]) -> None:
        self._pick_handlers.append(handler)

    def on_metrics(self, handler: Callable[[int, str], None]) -> None:
        self._metrics_handlers.append(handler)

    def on_gone(self, handler: Callable[[int], None]) -> None:
        """`handler(sibling)` when a sibling's connection to us ends (it stopped or died):
        what it told us is no longer true."""
        self._gone_handlers.append(handler)

    def on_connected(self, handler: Callable[[int], None]) -> None:
        """`handler(sibling)` once our connection to a sibling is made (again): the place
        to send it everything it must know."""
        self._connected_handlers.append(handler)

    async def start(self) -> None:
        path = self.config.socket_of(self.config.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # this index's socket from a process that died before us
        self._server = await asyncio.start_unix_server(self._serve, path)
        os.chmod(path, 0o600)
        for sibling in self.config.others:
            self._spawn(self._link(sibling))

    async def linked(self, timeout_s: float, below: int | None = None) -> bool:
        """Whether we are connected to every sibling (or every one with an index below
        `below`) within `timeout_s`."""
        waits = [e.wait() for i, e in self._linked.items() if below is None or i < below]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        except TimeoutError:
            return False
        return True

    def send(self, frame: bytes) -> None:
        """Queues `frame` to every connected sibling; never waits."""
        for sibling in self.config.others:
            self.send_to(sibling, frame)

    def send_to(self, sibling: int, frame: bytes) -> None:
        if sibling not in self._writers:
            self._drop(1)
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.setdefault(sibling, []).append(frame)

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for sibling, batch in pending.items():
            writer = self._writers.get(sibling)
            too_slow = (
                writer is None
                or writer.is_closing()
                or writer.transport.get_write_buffer_size() > self._max_buffer_bytes
            )
            if too_slow:
                self._drop(len(batch))
            else:
                assert writer is not None
                writer.write(b"".join(batch))

    def _drop(self, num_frames: int) -> None:
        self.dropped += num_frames
        self._on_dropped(num_frames)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the server leaves accepted connections open: close them too, so
        # siblings see us go.
        for writer in [*self._writers.values(), *self._served]:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.config.socket_of(self.config.index).unlink()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _link(self, sibling: int) -> None:
        """Keeps a connection to `sibling`, re-made whenever it ends."""
        delay_s = _RECONNECT_INITIAL_S
        path = self.config.socket_of(sibling)
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(path)
            except OSError:  # not listening yet, or restarting
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, _RECONNECT_MAX_S)
                continue
            delay_s = _RECONNECT_INITIAL_S
            writer.write(frames.hello(self.config.index))
            self._writers[sibling] = writer
            self._linked[sibling].set()
            for handler in self._connected_handlers:
                handler(sibling)
            # Nothing comes back on this connection: reading only tells when it ends.
            with contextlib.suppress(OSError):
                await reader.read()
            self._writers.pop(sibling, None)
            self._linked[sibling].clear()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sibling: int | None = None
        self._served.add(writer)
        try:
            kind, body = await _read_frame(reader)
            if kind != frames.HELLO:
                raise FrameError("the first frame is not a hello")
            sibling = frames.parse_hello(body)
            while True:
                kind, body = await _read_frame(reader)
                self._dispatch(sibling, kind, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sibling stopped (or died): normal
        except FrameError as error:
            _log.warning("sibling %s sent a bad frame (%s): link closed", sibling, error)
        finally:
            self._served.discard(writer)
            writer.close()
            if sibling is not None:
                for handler in self._gone_handlers:
                    handler(sibling)

    def _dispatch(self, sibling: int, kind: bytes, body: bytes) -> None:
        if kind == frames.LOAD:
            share = frames.parse_load(body)
            for load_handler in self._load_handlers:
                load_handler(sibling, share)
        elif kind == frames.PICK:
            pick = frames.parse_pick(body)
            for pick_handler in self._pick_handlers:
                pick_handler(sibling, pick)
        elif kind == frames.METRICS:
            text = frames.parse_metrics(body)
            for metrics_handler in self._metrics_handlers:
                metrics_handler(sibling, text)
        else:
            raise FrameError(f"unknown kind {kind!r}")


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    (length,) = frames.LENGTH.unpack(await reader.readexactly(frames.LENGTH.size))
    if not 1 <= length <= frames.MAX_FRAME_BYTES:
        raise FrameError(f"frame of {length} bytes (limit {frames.MAX_FRAME_BYTES})")
    payload = await reader.readexactly(length)
    return payload[:1], payload[1:]
