"""An HTTPS listener's one SSLContext follows its certificate files: new connections get
a renewed certificate, open ones keep theirs, a bad renewal changes nothing."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.common.tls import ReloadingSslContext, TlsFiles

from support.tls_certs import HttpsConnection, Pki, client_context, make_pki, replace_pair


async def _hello(request: web.Request) -> web.Response:
    del request
    return web.Response(text="hello")


@dataclass(frozen=True, slots=True)
class _Listener:
    pki: Pki
    tls: ReloadingSslContext
    port: int

    async def connect(self, context: ssl.SSLContext | None = None) -> HttpsConnection:
        return await HttpsConnection.open(self.port, context or client_context(self.pki.ca.path))


async def _serve(tls: ReloadingSslContext) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/hello", _hello)
    return await start_http_listener(app, "127.0.0.1", 0, HttpLimits(), ssl_context=tls.context)


@pytest_asyncio.fixture
async def listener(tmp_path: Path) -> AsyncIterator[_Listener]:
    pki = make_pki(tmp_path)
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path)
    tls = ReloadingSslContext(files, poll_s=0.05)
    runner, port = await _serve(tls)
    try:
        yield _Listener(pki, tls, port)
    finally:
        await tls.aclose()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_https_is_served_and_plain_http_is_not(listener: _Listener) -> None:
    connection = await listener.connect()
    try:
        assert await connection.get("/hello") == (200, b"hello")
        assert connection.serial == listener.pki.server.serial
    finally:
        await connection.close()
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            await plain.get(f"http://127.0.0.1:{listener.port}/hello")


@pytest.mark.asyncio
async def test_a_renewed_certificate_reaches_new_connections_only(
    listener: _Listener, tmp_path: Path
) -> None:
    pki = listener.pki
    old = await listener.connect()
    renewed = pki.ca.issue(tmp_path, "renewed")
    replace_pair(pki.server, renewed)
    assert listener.tls.reload_if_changed()
    new = await listener.connect()
    try:
        # A new connection's handshake presents the renewed certificate...
        assert new.serial == renewed.serial
        assert await new.get("/hello") == (200, b"hello")
        # ...while the connection opened before goes on, with the one it was given.
        assert old.serial == pki.server.serial
        assert await old.get("/hello") == (200, b"hello")
    finally:
        await old.close()
        await new.close()


@pytest.mark.asyncio
async def test_the_listener_polls_its_files(listener: _Listener, tmp_path: Path) -> None:
    listener.tls.start()
    renewed = listener.pki.ca.issue(tmp_path, "renewed")
    replace_pair(listener.pki.server, renewed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    seen = listener.pki.server.serial
    while seen != renewed.serial:
        assert loop.time() < deadline, "the renewed certificate was not loaded within 10 s"
        await asyncio.sleep(0.05)
        connection = await listener.connect()  # a new connection: a new handshake
        seen = connection.serial
        await connection.close()


@pytest.mark.asyncio
async def test_a_bad_renewal_keeps_the_old_pair_and_logs_once(
    listener: _Listener, caplog: pytest.LogCaptureFixture
) -> None:
    pki = listener.pki
    # Only the key changed, to another certificate's: the pair no longer matches.
    pki.server.key_path.write_bytes(pki.client.key_path.read_bytes())
    with caplog.at_level(logging.INFO, logger="triskel.common.tls"):
        assert not listener.tls.reload_if_changed()
        assert not listener.tls.reload_if_changed()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "--tls-key-file" in errors[0].getMessage()
    connection = await listener.connect()
    try:
        assert connection.serial == pki.server.serial
        assert await connection.get("/hello") == (200, b"hello")
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_a_server_requiring_client_certificates_refuses_others(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(
        cert_file=pki.server.cert_path,
        key_file=pki.server.key_path,
        ca_file=pki.ca.path,
        require_client_cert=True,
    )
    runner, port = await _serve(ReloadingSslContext(files))
    try:
        accepted = await HttpsConnection.open(port, client_context(pki.ca.path, pki.client))
        assert await accepted.get("/hello") == (200, b"hello")
        await accepted.close()
        # No certificate, or one from another CA: the handshake fails (under TLS 1.3
        # the client learns it at its first read).
        for cert in (None, pki.stranger):
            with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                refused = await HttpsConnection.open(port, client_context(pki.ca.path, cert))
                try:
                    await refused.get("/hello")
                finally:
                    await refused.close()
    finally:
        await runner.cleanup()
