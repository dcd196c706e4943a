"""`triskel up` as a user runs it: a real command, real child processes, Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import grpc
import pytest

from triskel.v1 import router_pb2, router_pb2_grpc

from support.processes import read_until, start_triskel

UP_YAML = """
router: {http: "127.0.0.1:0", grpc: "127.0.0.1:0"}
pools:
  - name: prefill
    role: prefill
    model: tiny
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}
  - name: decode
    role: decode
    model: tiny
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}
"""


@pytest.mark.asyncio
async def test_up_serves_then_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(UP_YAML)
    process = await start_triskel(["up", "-f", str(config)])
    try:
        lines = await read_until(process, "Triskel is ready")
        ready = lines[-1]
        http = re.search(r"http://(127\.0\.0\.1:\d+)/v1", ready)
        grpc_address = re.search(r"grpc (127\.0\.0\.1:\d+)", ready)
        assert http and grpc_address, ready
        worker_ports = re.findall(r"grpc 127\.0\.0\.1:(\d+)", "\n".join(lines[:-1]))
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://{http.group(1)}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200, await response.text()
            assert (await response.json())["choices"][0]["message"]["content"]
        async with grpc.aio.insecure_channel(grpc_address.group(1)) as channel:
            models = await router_pb2_grpc.RouterStub(channel).ListModels(
                router_pb2.ListModelsRequest(), timeout=10
            )
        assert [m.name for m in models.models] == ["tiny"]
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0
    # Every worker's port is closed: the children are gone, not orphaned.
    assert len(worker_ports) == 2
    for port in worker_ports:
        with pytest.raises(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.close()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        # A typo in a role names the pool, the field and the value.
        (UP_YAML.replace("role: decode", "role: decoder"), ["pools[1](decode).role", "'decoder'"]),
        (
            UP_YAML.replace("type: tcp}", "type: carrier-pigeon}", 1),
            ["pools[0](prefill).kvConnector.type", "carrier-pigeon"],
        ),
        (
            UP_YAML.replace("model: tiny", "model: tiny\n    replicas: {min: 3, max: 1}", 1),
            ["pools[0](prefill).replicas", "replicas.max (1) < replicas.min (3)"],
        ),
        (UP_YAML.replace('http: "127.0.0.1:0"', 'http: "localhost"'), ["router.http", "localhost"]),
        ("pools: [", ["not valid YAML"]),
        ("router: {}\n", ["pools", "Field required"]),
    ],
)
@pytest.mark.asyncio
async def test_a_bad_file_is_refused_before_anything_starts(
    tmp_path: Path, yaml_text: str, expected: list[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    process = await start_triskel(["up", "-f", str(config)])
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "Starting" not in stdout.decode()
    message = stderr.decode()
    assert str(config) in message
    for fragment in expected:
        assert fragment in message, message
