"""`triskel up` with `router.auth` in its file: the real command requires the key and
says at start whether the API is open."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from support.processes import read_until, start_triskel

KEY = "tsk_up-key"
UP_YAML = """
router:
  http: "127.0.0.1:0"
  grpc: "127.0.0.1:0"
{auth}
pools:
  - name: unified
    role: unified
    model: tiny
    kvConnector: {{type: tcp}}
    profile: {{name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}}
"""


@pytest.mark.asyncio
async def test_up_requires_the_key_of_its_file_and_says_so(tmp_path: Path) -> None:
    sha = hashlib.sha256(KEY.encode()).hexdigest()
    (tmp_path / "keys.yaml").write_text(f"keys:\n  - {{name: me, sha256: {sha}, tenant: me}}\n")
    auth = f"  auth: {{apiKeysFile: {tmp_path / 'keys.yaml'}}}"
    (tmp_path / "up.yaml").write_text(UP_YAML.format(auth=auth))
    process = await start_triskel(["up", "-f", str(tmp_path / "up.yaml")])
    try:
        lines = await read_until(process, "Triskel is ready")
        assert any(f"auth on: API keys from {tmp_path / 'keys.yaml'}" in line for line in lines)
        http = re.search(r"http://(127\.0\.0\.1:\d+)/v1", lines[-1])
        assert http, lines[-1]
        url = f"http://{http.group(1)}/v1/chat/completions"
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body) as reply:
                assert reply.status == 401
            async with session.post(url, json=body, headers={"x-api-key": KEY}) as reply:
                assert reply.status == 200, await reply.text()
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0


@pytest.mark.asyncio
async def test_up_without_auth_says_the_api_is_open(tmp_path: Path) -> None:
    (tmp_path / "up.yaml").write_text(UP_YAML.format(auth=""))
    process = await start_triskel(["up", "-f", str(tmp_path / "up.yaml")])
    try:
        lines = await read_until(process, "Triskel is ready")
        assert any("auth off: anyone who can reach these ports" in line for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
