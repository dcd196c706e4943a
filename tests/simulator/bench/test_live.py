"""`bench` and `triskel bench` against a real router and mock workers, over HTTP and gRPC."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.simulator.bench.run import bench
from triskel.simulator.prefix_bound import prefix_hit_bound
from triskel.traces import SyntheticSpec, Trace, synthetic_trace

from support.cluster import LocalCluster, local_cluster, small_config
from support.processes import start_triskel

# Prefill + decode over TCP, 20× faster than the modelled GPU: the paths are real,
# the run is short.
UP_YAML = """
pools:
  - name: prefill
    role: prefill
    model: tiny
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536, timeScale: 0.05}
  - name: decode
    role: decode
    model: tiny
    kvConnector: {type: tcp}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 65536, timeScale: 0.05}
"""
SPEC = {
    "ratePerS": 20,
    "numRequests": 20,
    "inputTokensMean": 300,
    "outputTokensMean": 12,
    # Two shared system prompts of two 64-token blocks: later requests hit the cache.
    "numPrefixes": 2,
    "prefixBlocks": 2,
    "blockTokens": 64,
}


def small_trace() -> Trace:
    return synthetic_trace(SyntheticSpec.model_validate(SPEC), seed=3)


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[LocalCluster]:
    async with local_cluster(small_config(UP_YAML)) as running:
        yield running


@pytest.mark.parametrize("wire", ["http", "grpc"])
@pytest.mark.asyncio
async def test_every_request_gets_exactly_its_tokens_timed_from_its_send(
    cluster: LocalCluster, wire: str
) -> None:
    trace = small_trace()
    url = cluster.http_url if wire == "http" else f"grpc://{cluster.grpc_address}"
    run = await bench(trace, url, rate_scale=2.0, timeout_s=60)
    assert run.model == "tiny" and not run.failures
    records = run.result.requests
    assert [r.index for r in records] == [r.index for r in trace.requests]
    for record, request in zip(records, trace.requests, strict=True):
        assert record.arrival_s == pytest.approx(request.arrival_s / 2.0)
        assert record.num_output_tokens == request.num_output_tokens
        assert record.first_token_s is not None and record.finish_s is not None
        assert record.arrival_s < record.first_token_s <= record.finish_s
    # The router reports prefix-cache hits; no cache can beat the infinite one.
    num_cached = sum(r.num_cached_tokens for r in records)
    num_prompt = sum(r.num_input_tokens for r in records)
    assert 0 < num_cached / num_prompt <= prefix_hit_bound(trace.requests).hit_ratio


@pytest.mark.asyncio
async def test_the_command_prints_the_table_and_writes_json(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(json.dumps({"seed": 3, "spec": SPEC}))
    output = tmp_path / "bench.json"
    command = ["bench", "--trace", f"synthetic:{spec}", "--url", f"grpc://{cluster.grpc_address}"]
    process = await start_triskel([*command, "--limit", "6", "--json", str(output)])
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()
    text = stdout.decode()
    assert "6 finished, 0 failed" in text
    assert f"| grpc://{cluster.grpc_address} |" in text  # the table's row
    document = json.loads(output.read_text())
    assert document["model"] == "tiny" and document["failures"] == {}
    assert document["policies"][0]["metrics"]["num_finished"] == 6


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(json.dumps({"seed": 3, "spec": SPEC}))
    return path


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_an_unreachable_router_is_one_line_and_exit_2(scheme: str, spec_file: Path) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(
        app, ["bench", "--trace", f"synthetic:{spec_file}", "--url", url, "--no-progress"]
    )
    assert result.exit_code == 2
    # The trace's summary line, then the error: one line, no traceback.
    _, error = result.output.splitlines()
    assert error.startswith(f"cannot reach the router at {url}: ")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--trace", "missing.jsonl"], "missing.jsonl: cannot read"),
        (["--url", "127.0.0.1:8080"], "--url 127.0.0.1:8080: expected http://HOST:PORT"),
    ],
)
def test_bad_inputs_are_refused_naming_them(
    args: list[str], fragment: str, spec_file: Path
) -> None:
    result = CliRunner().invoke(app, ["bench", "--trace", f"synthetic:{spec_file}", *args])
    assert result.exit_code == 2
    assert fragment in result.output and "Traceback" not in result.output
