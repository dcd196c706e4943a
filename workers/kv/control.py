"""The control channel every connector shares: length-prefixed JSON frames over TCP.

    frame = 4-byte big-endian length ‖ JSON object (orjson)

An importer opens a connection to the exporter's listener, reads its `challenge`
frame, sends one `PullRequest` frame (with the handle's capability and a proof over
the challenge, see `capability`) and reads `PullReply` frames; what moves the bytes
(more bytes on this same socket, Mooncake, torch.distributed) is the connector's business.

Anyone who can reach the port can send frames, so the exporter bounds what one costs:
a frame's length is checked before a byte of it is read (`MAX_FRAME_BYTES`), each of
its reads has a deadline, and a listener serves at most `MAX_CONNECTIONS` at once.

Sockets are driven with the event loop's `sock_*` calls rather than streams, so raw
block bytes can go straight from the sender's arena (`sock_sendall` of memoryviews)
into the receiver's (`sock_recv_into`), with no intermediate buffer on either side.

With TLS (a worker given certificate files and a CA, see `control_tls`), the same
frames and raw bytes go through an asyncio TLS stream instead: `sock_*` calls take no
SSLSocket, and encryption copies the bytes anyway. Both ends present a certificate and
verify the peer's against the CA; the handshake is bounded like a frame read. The
plaintext path is unchanged: still zero-copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from triskel.workers.kv.control_tls import TlsStream

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_HEADER = struct.Struct("!I")
# Control frames are small: the biggest real one, a pull of a 131072-token prompt,
# names 8192 destination blocks in ~60 KiB of JSON. A bigger length means a confused
# or hostile peer, refused before anything is allocated for it.
MAX_FRAME_BYTES = 256 << 10
# An exporter's longest wait for a peer's pull frame (it is sent right after connecting).
CONTROL_READ_TIMEOUT_S = 5.0
# Connections one listener serves at once; more wait in the kernel's backlog.
MAX_CONNECTIONS = 256


class ChannelClosed(ConnectionError):
    """The peer closed the connection."""


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(address: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6host]:port"; ValueError names the address."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]"), int(port_text)


@dataclass(frozen=True, slots=True)
class PullRequest:
    """Importer → exporter: send blocks `[skip_blocks:]` of `request_id`'s export.

    `num_blocks` and `block_bytes` are what the importer expects (the exporter
    refuses a mismatch); `dest_block_ids` are the importer's destination blocks
    (all of them, `skip_blocks` included); `params` are transport specifics.
    `capability` is the handle's token, `proof` the importer's answer to this
    connection's challenge.
    """

    request_id: str
    num_blocks: int
    skip_blocks: int
    block_bytes: int
    dest_block_ids: tuple[int, ...]
    params: Mapping[str, str] = field(default_factory=dict)
    capability: str = ""
    proof: str = ""

    @property
    def num_pulled_bytes(self) -> int:
        return (self.num_blocks - self.skip_blocks) * self.block_bytes

    def to_frame(self) -> dict[str, Any]:
        return {
            "op": "pull",
            "request_id": self.request_id,
            "num_blocks": self.num_blocks,
            "skip_blocks": self.skip_blocks,
            "block_bytes": self.block_bytes,
            "dest_block_ids": list(self.dest_block_ids),
            "params": dict(self.params),
            "capability": self.capability,
            "proof": self.proof,
        }

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> PullRequest:
        """ValueError naming the field when the frame is not a valid pull."""
        if frame.get("op") != "pull":
            raise ValueError(f"op {frame.get('op')!r} is not 'pull'")
        dest = frame.get("dest_block_ids")
        params = frame.get("params")
        if not isinstance(dest, list) or not all(type(b) is int for b in dest):
            raise ValueError("dest_block_ids must be a list of ints")
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise ValueError("params must map strings to strings")
        return cls(
            request_id=_field(frame, "request_id", str),
            num_blocks=_field(frame, "num_blocks", int),
            skip_blocks=_field(frame, "skip_blocks", int),
            block_bytes=_field(frame, "block_bytes", int),
            dest_block_ids=tuple(dest),
            params=params,
            capability=_field(frame, "capability", str),
            proof=_field(frame, "proof", str),
        )


@dataclass(frozen=True, slots=True)
class PullReply:
    """Exporter → importer. `code` is a machine-readable failure kind ("" when ok)."""

    ok: bool
    num_bytes: int = 0
    error: str = ""
    code: str = ""

    @classmethod
    def refusal_frame(cls, error: str, code: str) -> dict[str, Any]:
        return cls(ok=False, error=error, code=code).to_frame()

    @classmethod
    def refused_frame(cls) -> dict[str, Any]:
        """To a pull that did not prove its right to the export: no reason, so a
        prober learns nothing (which request ids exist, their sizes, the key)."""
        return cls(ok=False, error="refused", code="refused").to_frame()

    def to_frame(self) -> dict[str, Any]:
        return {"ok": self.ok, "num_bytes": self.num_bytes, "error": self.error, "code": self.code}

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> PullReply:
        return cls(
            ok=_field(frame, "ok", bool),
            num_bytes=_field(frame, "num_bytes", int),
            error=_field(frame, "error", str),
            code=_field(frame, "code", str),
        )


def challenge_frame(challenge: bytes) -> dict[str, Any]:
    return {"op": "challenge", "challenge": challenge.hex()}


def parse_challenge(frame: Mapping[str, Any]) -> bytes:
    """ValueError when the exporter's first frame is not a challenge."""
    if frame.get("op") != "challenge":
        raise ValueError(f"op {frame.get('op')!r} is not 'challenge'")
    return bytes.fromhex(_field(frame, "challenge", str))


def _field(frame: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = frame.get(name)
    # bool is an int subclass; a JSON true must not pass as a count.
    if type(value) is not kind:
        raise ValueError(f"{name} must be {kind.__name__}, got {value!r}")
    return value


class FrameChannel:
    """One connected socket: frames both ways, plus raw buffers for data planes.
    Plaintext on the socket itself, or TLS through a stream (`over_tls`)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._tls: TlsStream | None = None

    @classmethod
    async def over_tls(
        cls, sock: socket.socket, context: ssl.SSLContext, *, server_side: bool
    ) -> FrameChannel:
        """The channel after a TLS handshake on `sock` (within CONTROL_READ_TIMEOUT_S);
        ssl.SSLError or ConnectionError when it fails (the socket is closed then)."""
        channel = cls(sock)
        channel._tls = await TlsStream.handshake(
            sock, context, server_side=server_side, timeout_s=CONTROL_READ_TIMEOUT_S
        )
        return channel

    async def send_frame(self, message: Mapping[str, Any]) -> None:
        body = orjson.dumps(message)
        await self._send(_HEADER.pack(len(body)) + body)

    async def recv_frame(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next frame; ValueError for one over MAX_FRAME_BYTES (before reading it)
        or not a JSON object, TimeoutError when it takes longer than `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            header = await self._recv_bytes(_HEADER.size)
            (length,) = _HEADER.unpack(header)
            if length > MAX_FRAME_BYTES:
                raise ValueError(f"control frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            body = await self._recv_bytes(length)
        frame = orjson.loads(body)
        if not isinstance(frame, dict):
            raise ValueError(f"control frame is {type(frame).__name__}, not an object")
        return frame

    async def send_buffers(self, buffers: Iterable[memoryview]) -> None:
        for buffer in buffers:
            await self._send(buffer)

    async def recv_into(self, buffer: memoryview) -> None:
        """Fill `buffer` completely; ChannelClosed if the peer closes first."""
        filled_bytes = 0
        total_bytes = buffer.nbytes
        while filled_bytes < total_bytes:
            rest = buffer[filled_bytes:]
            if self._tls is None:
                received = await self._loop.sock_recv_into(self._sock, rest)
            else:
                received = await self._tls.recv_into(rest)
            if received == 0:
                raise ChannelClosed(f"peer closed after {filled_bytes} of {total_bytes} bytes")
            filled_bytes += received

    async def _send(self, data: bytes | memoryview) -> None:
        if self._tls is None:
            await self._loop.sock_sendall(self._sock, data)
        else:
            await self._tls.send(data)

    async def _recv_bytes(self, num_bytes: int) -> bytes:
        buffer = bytearray(num_bytes)
        with memoryview(buffer) as view:
            await self.recv_into(view)
        return bytes(buffer)

    def close(self) -> None:
        if self._tls is not None:
            self._tls.close()
        else:
            self._sock.close()


async def open_channel(address: str, tls: ssl.SSLContext | None = None) -> FrameChannel:
    """Connect to a control listener, over TLS with `tls` (a client context); OSError
    (e.g. ConnectionRefusedError, ssl.SSLError) if it is gone or the handshake fails."""
    host, port = parse_address(address)
    loop = asyncio.get_running_loop()
    family, kind, proto, _, sockaddr = (
        await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, sockaddr)
        if tls is not None:
            return await FrameChannel.over_tls(sock, tls, server_side=False)
        return FrameChannel(sock)
    except BaseException:
        sock.close()
        raise


ConnectionHandler = Callable[[FrameChannel], Awaitable[None]]


class ControlServer:
    """Accepts connections on `host`:0 and runs `handler` for each, concurrently
    (at most `max_connections` at once); over TLS with `tls` (a server context)."""

    def __init__(
        self,
        handler: ConnectionHandler,
        max_connections: int = MAX_CONNECTIONS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self.tls = tls
        self._slots = asyncio.Semaphore(max_connections)
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self.address = ""

    async def start(self, host: str) -> str:
        """Bind and listen; returns the "host:port" address peers should use."""
        loop = asyncio.get_running_loop()
        family = (await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM))[0][0]
        listener = socket.create_server((host, 0), family=family)
        listener.setblocking(False)
        self._listener = listener
        self.address = format_address(host, listener.getsockname()[1])
        self._accept_task = asyncio.create_task(self._accept_loop(), name="kv-control-accept")
        return self.address

    async def _accept_loop(self) -> None:
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()  # released when a connection ends
            try:
                sock, _ = await loop.sock_accept(self._listener)
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._serve(sock), name="kv-control-conn")
            self._connection_tasks.add(task)
            task.add_done_callback(self._connection_tasks.discard)

    async def _serve(self, sock: socket.socket) -> None:
        channel: FrameChannel | None = None
        try:
            if self.tls is None:
                channel = FrameChannel(sock)
            else:
                channel = await self._handshake(sock, self.tls)
                if channel is None:
                    return
            await self._handler(channel)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.debug("KV control peer went away", exc_info=True)
        except TimeoutError:
            log.warning("KV control peer sent no complete frame in time: dropped")
        except ValueError as error:  # a malformed frame: drop that peer, keep serving
            log.warning("bad KV control frame: %s", error)
        except Exception:
            log.exception("KV control connection failed")
        finally:
            if channel is not None:
                channel.close()
            else:
                sock.close()
            self._slots.release()

    @staticmethod
    async def _handshake(sock: socket.socket, context: ssl.SSLContext) -> FrameChannel | None:
        """The TLS channel; None (one WARNING line) for a peer without a certificate
        the CA signed, or one that does not finish its handshake in time."""
        try:
            return await FrameChannel.over_tls(sock, context, server_side=True)
        except (ssl.SSLError, ConnectionError, TimeoutError) as error:
            log.warning("KV control peer refused: TLS handshake failed: %s", error)
            return None

    async def close(self) -> None:
        """Stop accepting, cancel open connections; idempotent."""
        tasks: list[asyncio.Task[None]] = list(self._connection_tasks)
        if self._accept_task is not None:
            tasks.append(self._accept_task)
            self._accept_task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            self._listener.close()
            self._listener = None
