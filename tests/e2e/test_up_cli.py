"""`triskel up` as a user runs it: a real command, real child processes, Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from triskel.cli.up import run_up
from triskel.cli.up_config import parse_up_config
from triskel.v1 import router_pb2, router_pb2_grpc

from support.held_address import held_loopback_address
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


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.asyncio
async def test_up_serves_then_stops_every_child_on_ctrl_c(tmp_path: Path, processes: int) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(
        UP_YAML.replace('grpc: "127.0.0.1:0"}', f'grpc: "127.0.0.1:0", processes: {processes}}}')
    )
    process = await start_triskel(["up", "-f", str(config)])
    try:
        lines = await read_until(process, "Triskel is ready")
        ready = lines[-1]
        # Several router processes: /metrics on a port of its own, where they are summed.
        (router_line,) = [line for line in lines if line.strip().startswith("router")]
        metrics = re.search(r"metrics http://(127\.0\.0\.1:\d+)/metrics", router_line)
        assert metrics, router_line
        assert ("(2 processes)" in router_line) == (processes == 2), router_line
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
        # The answer counted, whichever process gave it (a second's counters reach the
        # first within a second).
        answered = r'triskel_requests_total\{front="http",model="tiny",status="ok"\} 1\.0'
        async with aiohttp.ClientSession() as session:
            for _ in range(50):
                async with session.get(f"http://{metrics.group(1)}/metrics") as response:
                    if re.search(answered, await response.text()):
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the answer is not counted in the router's /metrics")
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
        (
            UP_YAML.replace(
                'grpc: "127.0.0.1:0"}',
                'grpc: "127.0.0.1:0", processes: 2, auth: {apiKeysFile: /dev/null}}',
            ),
            ["router", "processes: more than one with auth needs redisUrl"],
        ),
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


@pytest.fixture
def busy_address() -> Iterator[str]:
    """A loopback address another process's socket listens on."""
    with held_loopback_address() as address:
        yield address


@pytest.mark.parametrize("flag", ["--http", "--grpc"])
@pytest.mark.asyncio
async def test_a_busy_router_port_is_one_line_naming_the_flag(
    tmp_path: Path, busy_address: str, flag: str
) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(UP_YAML)
    process = await start_triskel(["up", "-f", str(config), flag, busy_address])
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    # Refused before any worker starts: none can be left behind.
    assert "Starting" not in stdout.decode()
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert busy_address in lines[0] and flag in lines[0], lines[0]
    assert "in use" in lines[0], lines[0]


@pytest.mark.parametrize("api", ["http", "grpc"])
@pytest.mark.asyncio
async def test_a_port_taken_after_the_check_stops_every_worker_without_a_traceback(
    busy_address: str, capfd: pytest.CaptureFixture[str], api: str
) -> None:
    # run_up itself does not check the port (the command does, before it): the router
    # fails to bind after the workers started, as when another process wins the race.
    yaml_text = UP_YAML.replace(f'{api}: "127.0.0.1:0"', f"{api}: {busy_address}")
    config = parse_up_config(yaml_text, "t")
    said: list[str] = []
    code = await asyncio.wait_for(run_up(config, "t", said.append), 90)
    assert code == 1
    assert any("router" in line and "error" in line for line in said), said
    worker_ports = re.findall(r"grpc 127\.0\.0\.1:(\d+)", "\n".join(said))
    assert len(worker_ports) == 2, said
    for port in worker_ports:  # each worker stopped: its port is closed
        with pytest.raises(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", int(port))
            writer.close()
    # The router child wrote to this process's stderr: one line, no traceback.
    router_output = capfd.readouterr().err
    assert "Traceback" not in router_output, router_output
    assert busy_address.rpartition(":")[2] in router_output, router_output
