"""`triskel worker`: the flags a pod starts it with, next to `--config-json` (`triskel up`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.cli.supervisor import READY_PREFIX
from triskel.v1 import worker_pb2, worker_pb2_grpc

from support.held_address import held_loopback_address
from support.processes import read_until, start_triskel

POOL = {"role": "decode", "model": "m", "profile": {"kvCapacityTokens": 2048, "timeScale": 0}}


async def run_until_ready(
    args: list[str],
) -> tuple[dict[str, str | None], worker_pb2.WorkerInfo, dict[str, Any] | None]:
    """Starts `triskel worker args`, asks it who it is (over gRPC, and over HTTP when it
    serves HTTP: /get_model_info), stops it (SIGTERM, by PID)."""
    process = await start_triskel(["worker", *args])
    try:
        lines = await read_until(process, READY_PREFIX, timeout_s=60)
        ready: dict[str, str | None] = json.loads(lines[-1].split(READY_PREFIX, 1)[1])
        assert ready["grpc"] is not None
        async with grpc.aio.insecure_channel(ready["grpc"]) as channel:
            info = await worker_pb2_grpc.WorkerStub(channel).GetInfo(
                worker_pb2.GetInfoRequest(), timeout=10
            )
        model_info = None
        if ready["http"] is not None:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{ready['http']}/get_model_info") as reply,
            ):
                model_info = await reply.json()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        return ready, info, model_info
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


@pytest.mark.asyncio
async def test_pod_flags_start_a_worker() -> None:
    ready, info, _ = await run_until_ready(
        [
            "--pool-json",
            json.dumps(POOL),
            "--worker-id",
            "decode-7f9c-abcde",
            "--grpc-address",
            "127.0.0.1:0",
            "--kv-host",
            "127.0.0.1",
        ]
    )
    assert ready["worker_id"] == info.worker_id == "decode-7f9c-abcde"
    assert info.role == "decode"
    # Without the flags the worker serves gRPC only (and its frames), and says so.
    assert (ready["http"], ready["bootstrap"]) == (None, None)


@pytest.mark.asyncio
async def test_the_frame_port_flag_is_served_and_advertised() -> None:
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready, info, _ = await run_until_ready(
        ["--pool-json", json.dumps(POOL), "--worker-id", "d-1", "--frame-port", str(port)]
    )
    assert info.frame_port == port
    assert ready["frames"] == f"127.0.0.1:{port}"


@pytest.mark.asyncio
async def test_http_flags_serve_the_vllm_api_beside_grpc() -> None:
    prefill_pool = {**POOL, "role": "prefill"}
    ready, info, model_info = await run_until_ready(
        [
            "--pool-json",
            json.dumps(prefill_pool),
            "--worker-id",
            "prefill-1",
            "--http-address",
            "127.0.0.1:0",
            "--bootstrap-address",
            "127.0.0.1:0",
        ]
    )
    # The ready line: {"worker_id", "grpc", "http", "bootstrap", "frames"}, each bound
    # port real (frames: Decode / Prefill / Cancel as frames, on the gRPC host).
    assert set(ready) == {"worker_id", "grpc", "http", "bootstrap", "frames"}
    for name in ("grpc", "http", "bootstrap", "frames"):
        address = ready[name]
        assert address is not None and address.startswith("127.0.0.1:")
        assert not address.endswith(":0")
    assert model_info is not None and model_info["triskel"]["worker_id"] == info.worker_id


@pytest.mark.asyncio
async def test_config_json_still_works_and_flags_override_it() -> None:
    # `triskel up` writes the whole config with wire (camelCase) names.
    config = {"workerId": "from-json", "pool": POOL, "grpcAddress": "127.0.0.1:0"}
    _, info, _ = await run_until_ready(["--config-json", json.dumps(config)])
    assert info.worker_id == "from-json"
    _, info, _ = await run_until_ready(
        ["--config-json", json.dumps(config), "--worker-id", "from-flag"]
    )
    assert info.worker_id == "from-flag"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        # Without --config-json, the pool alone does not say who the worker is.
        (["--pool-json", json.dumps(POOL)], "workerId\n  Field required"),
        (["--pool-json", "{not json", "--worker-id", "w"], "--pool-json: not valid JSON"),
        (["--pool-json", "[1]", "--worker-id", "w"], "--pool-json: expected a JSON object"),
        (
            ["--pool-json", json.dumps(POOL), "--worker-id", "w", "--grpc-address", "nowhere"],
            "expected host:port",
        ),
        (
            ["--pool-json", json.dumps(POOL), "--worker-id", "w", "--http-address", "nowhere"],
            "expected host:port",
        ),
        # A decode worker has no prefills to publish.
        (
            [
                *("--pool-json", json.dumps(POOL), "--worker-id", "w"),
                *("--http-address", "127.0.0.1:0", "--bootstrap-address", "127.0.0.1:0"),
            ],
            "bootstrapAddress: only prefill and unified workers",
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_problem(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 2
    assert fragment in result.stderr, result.stderr


@pytest.mark.asyncio
async def test_the_kv_auth_key_file_flag_replaces_the_configs(tmp_path: Path) -> None:
    # A pod passes the mounted Secret's file; the flag wins over --config-json's field,
    # which here names a file that does not exist (the worker would refuse to start).
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef" * 4 + "\n")
    config = {"workerId": "w", "pool": POOL, "kvAuthKeyFile": str(tmp_path / "missing")}
    _, info, _ = await run_until_ready(
        ["--config-json", json.dumps(config), "--kv-auth-key-file", str(key_file)]
    )
    assert info.worker_id == "w"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "kv_auth_key_file: cannot read"),
        # Surrounding whitespace does not count: 31 bytes are too few.
        (b"  " + b"k" * 31 + b"\n", "holds 31 bytes"),
    ],
)
def test_a_kv_auth_key_file_the_worker_cannot_use_exits_2_naming_it(
    tmp_path: Path, content: bytes | None, fragment: str
) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_bytes(content)
    args = ["--pool-json", json.dumps(POOL), "--worker-id", "w"]
    result = CliRunner().invoke(app, ["worker", *args, "--kv-auth-key-file", str(key_file)])
    assert result.exit_code == 2
    assert fragment in result.stderr and str(key_file) in result.stderr, result.stderr


@pytest.mark.parametrize("flag", ["--grpc-address", "--http-address"])
@pytest.mark.asyncio
async def test_a_busy_address_exits_2_naming_it_without_a_traceback(flag: str) -> None:
    other = "--http-address" if flag == "--grpc-address" else "--grpc-address"
    with held_loopback_address() as busy_address:
        process = await start_triskel(
            [
                *("worker", "--pool-json", json.dumps(POOL), "--worker-id", "w"),
                *(flag, busy_address, other, "127.0.0.1:0"),
            ]
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    message = stderr.decode()
    busy_port = busy_address.rpartition(":")[2]
    assert "worker w: " in message and busy_port in message, message
    assert "Traceback" not in message, message
