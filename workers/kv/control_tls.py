"""TLS for the KV control channel: both ends present a certificate and verify the
peer's against the graph's CA (mTLS), reloading renewed files.

    KvTls.from_files(files)   a worker's certificate, key and CA (--tls-* flags)
      .server                 the control listener's context: clients need a certificate
      .client                 a puller's context: verifies the exporter's chain, not a name
                              (peers are dialled by pod IP)

`TlsStream` carries a `FrameChannel`'s bytes when TLS is on: an asyncio TLS stream on
the connected socket (the loop's `sock_*` calls take no SSLSocket). Raw buffers go in
pieces, so a large run of blocks is never encrypted into one buffer as large.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

from triskel.common.tls import SERVER_FLAGS, ReloadingSslContext, TlsFileError, TlsFiles, TlsFlags

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class KvTls:
    server: ReloadingSslContext
    client: ReloadingSslContext

    @classmethod
    def from_files(cls, files: TlsFiles, flags: TlsFlags = SERVER_FLAGS) -> KvTls:
        """TlsFileError naming the flag when the files cannot be used, or the CA is
        missing (there is no mutual TLS without one)."""
        if files.ca_file is None:
            raise TlsFileError(flags.ca, "needed for TLS between workers (mutual)")
        server_files = files.model_copy(update={"require_client_cert": True})
        return cls(
            server=ReloadingSslContext(server_files, flags),
            client=ReloadingSslContext(files, flags, server=False, check_hostname=False),
        )

    def start(self) -> None:
        self.server.start()
        self.client.start()

    async def aclose(self) -> None:
        await self.server.aclose()
        await self.client.aclose()


class TlsStream:
    """A connected socket after a TLS handshake: bytes out and in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def handshake(
        cls, sock: socket.socket, context: ssl.SSLContext, *, server_side: bool, timeout_s: float
    ) -> TlsStream:
        """ssl.SSLError or ConnectionError when the handshake fails, which closes `sock`."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            if server_side:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, sock, ssl=context, ssl_handshake_timeout=timeout_s
                )
            else:
                # No name to check (server_hostname ""): the CA vouches for the peer.
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    sock=sock,
                    ssl=context,
                    server_hostname="",
                    ssl_handshake_timeout=timeout_s,
                )
        except BaseException:
            sock.close()
            raise
        return cls(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    async def send(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, view.nbytes, CHUNK_BYTES):
            # A copy: the stream may keep what it is given past this call, and the
            # caller's view (an arena's) is released when the call returns.
            self._writer.write(bytes(view[start : start + CHUNK_BYTES]))
            await self._writer.drain()

    async def recv_into(self, buffer: memoryview) -> int:
        """Bytes read into the start of `buffer` (0: the peer closed)."""
        data = await self._reader.read(min(buffer.nbytes, CHUNK_BYTES))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._writer.close()  # the transport owns the socket
