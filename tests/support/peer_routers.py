"""The peer routers Triskel is tested and benchmarked against, as child processes.

SGLang's model gateway (`smg`, PyPI sglang-router) and vLLM's router (`vllm-router`)
are pinned and installed into `.peers/bin` by `scripts/install_peer_routers.sh` (CI
runs it and exports TRISKEL_PEERS_BIN; the first use here runs it too, so the tests
work on a fresh clone). Mock workers serve them through the worker's vLLM-compatible
HTTP API (the same processes serve Triskel's gRPC protocol too, which
`bench/compare_routers.py` also gives Triskel's router). Neither peer can bind port 0
and report the port, so ports come from the OS just before the start (a lost race is
retried with new ones).

    mock workers (triskel worker --http-address 127.0.0.1:0) ◄── peer router ◄── client

`bench/compare_routers.py` starts the peers through this module too, so the numbers it
reports come from the same command lines the compatibility tests check.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import aiohttp

from triskel.cli.supervisor import Supervisor
from triskel.cli.up import write_kv_auth_key

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install_peer_routers.sh"
PEERS_BIN_ENV = "TRISKEL_PEERS_BIN"
HOST = "127.0.0.1"

INSTALL_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.1
_START_ATTEMPTS = 3
_LOG_TAIL_CHARS = 2_000
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class PeerRouterError(RuntimeError):
    """A peer router could not be installed or did not come up; the message says why."""


class Peer(StrEnum):
    SMG = "smg"
    VLLM_ROUTER = "vllm-router"


def peers_bin() -> Path:
    """Where the pinned peer commands live: $TRISKEL_PEERS_BIN, else .peers/bin."""
    configured = os.environ.get(PEERS_BIN_ENV)
    return Path(configured) if configured else ROOT / ".peers" / "bin"


def peer_binary(peer: Peer) -> Path:
    """The pinned `peer` command, installed on first use; PeerRouterError naming the fix."""
    binary = peers_bin() / peer.value
    if not binary.is_file():
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0 or not binary.is_file():
            raise PeerRouterError(
                f"{binary} missing and {INSTALL_SCRIPT.name} failed "
                f"(exit {result.returncode}): {result.stderr[-_LOG_TAIL_CHARS:]}"
            )
    return binary


@dataclass(frozen=True, slots=True)
class HttpWorker:
    """A mock worker serving the vLLM-compatible API, and Triskel's worker protocol."""

    worker_id: str
    role: str
    url: str
    # host:port of its gRPC server (Triskel's protocol; GetInfo reports role and model).
    grpc_address: str
    # The SGLang-style bootstrap listener's port (prefill workers started with one).
    bootstrap_port: int | None = None
    # host:port where it serves Decode, Prefill and Cancel as frames (GetInfo advertises
    # the port); None: it serves none, and a Triskel router calls it over gRPC only.
    frames_address: str | None = None


@functools.cache
def _kv_auth_key_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="triskel-peer-kv-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_kv_auth_key(folder / "kv-auth-key")


async def start_http_worker(
    supervisor: Supervisor,
    worker_id: str,
    pool: dict[str, Any],
    with_bootstrap: bool = False,
) -> HttpWorker:
    """Starts `triskel worker` with its HTTP API (and a bootstrap listener) on port 0,
    beside its gRPC server and frame listener (port 0 too)."""
    config: dict[str, Any] = {
        "workerId": worker_id,
        "pool": pool,
        "grpcAddress": f"{HOST}:0",
        "httpAddress": f"{HOST}:0",
        # Short drains: a benchmark's stragglers must not hold up the next phase's start.
        "drainTimeoutS": 2.0,
        # One key for every worker these tests start, as `triskel up` gives its workers.
        "kvAuthKeyFile": str(_kv_auth_key_file()),
    }
    if with_bootstrap:
        config["bootstrapAddress"] = f"{HOST}:0"
    child = await supervisor.start(worker_id, "worker", config, ready_timeout_s=STARTUP_TIMEOUT_S)
    http, bootstrap = child.ready.get("http"), child.ready.get("bootstrap")
    grpc, frames = child.ready.get("grpc"), child.ready.get("frames")
    if not http or not grpc:
        raise PeerRouterError(
            f"worker {worker_id} announced no HTTP or gRPC address: {child.ready}"
        )
    if with_bootstrap and not bootstrap:
        raise PeerRouterError(f"worker {worker_id} announced no bootstrap address: {child.ready}")
    bootstrap_port = int(str(bootstrap).rsplit(":", 1)[1]) if bootstrap else None
    return HttpWorker(
        worker_id,
        pool["role"],
        f"http://{http}",
        str(grpc),
        bootstrap_port,
        str(frames) if frames else None,
    )


@dataclass(frozen=True, slots=True)
class PeerLayout:
    """The workers a peer routes to: unified ones, or prefill and decode ones (P/D)."""

    unified: tuple[HttpWorker, ...] = ()
    prefill: tuple[HttpWorker, ...] = ()
    decode: tuple[HttpWorker, ...] = ()

    def __post_init__(self) -> None:
        if self.unified and (self.prefill or self.decode):
            raise ValueError("PeerLayout: either unified workers or prefill + decode, not both")
        if bool(self.prefill) != bool(self.decode):
            raise ValueError("PeerLayout: P/D needs at least one prefill and one decode worker")

    @property
    def is_disaggregated(self) -> bool:
        return bool(self.prefill)

    @property
    def workers(self) -> tuple[HttpWorker, ...]:
        return self.unified + self.prefill + self.decode


def peer_command(
    peer: Peer, binary: Path, layout: PeerLayout, policy: str, port: int, metrics_port: int
) -> list[str]:
    """The command line starting `peer` on loopback in front of `layout`. Pure."""
    command = [str(binary)] + (["launch"] if peer is Peer.SMG else [])
    command += ["--host", HOST, "--port", str(port)]
    # Both default their Prometheus listener to a fixed port (smg: on every interface):
    # a free loopback port keeps parallel runs apart and the machine closed.
    command += ["--prometheus-host", HOST, "--prometheus-port", str(metrics_port)]
    command += ["--policy", policy, "--worker-startup-check-interval", "1"]
    command += ["--log-level", "warn" if peer is Peer.SMG else "warning"]
    if not layout.is_disaggregated:
        return [*command, "--worker-urls", *(w.url for w in layout.unified)]
    command.append("--pd-disaggregation" if peer is Peer.SMG else "--vllm-pd-disaggregation")
    for prefill in layout.prefill:
        # smg hands the bootstrap port to both workers; vllm-router moves KV by
        # kv_transfer_params and needs none.
        has_port = peer is Peer.SMG and prefill.bootstrap_port is not None
        command += ["--prefill", prefill.url, *([str(prefill.bootstrap_port)] if has_port else [])]
    for decode in layout.decode:
        command += ["--decode", decode.url]
    return command


def free_port() -> int:
    """A port the OS just called free on loopback (the caller binds it right away)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(slots=True)
class PeerRouter:
    """One peer router process in front of `layout`; `async with` starts and stops it.

    Ready means its /workers endpoint lists every worker of `layout` as healthy, the
    point from which both peers route requests (their /health answers earlier).
    """

    peer: Peer
    layout: PeerLayout
    policy: str
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    port: int = 0
    _process: asyncio.subprocess.Process | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def name(self) -> str:
        return f"{self.peer.value} --policy {self.policy}"

    async def __aenter__(self) -> PeerRouter:
        binary = peer_binary(self.peer)
        try:
            for _ in range(_START_ATTEMPTS):
                if await self._start(binary):
                    return self
            raise PeerRouterError(
                f"{self.name}: its port was taken {_START_ATTEMPTS} times:\n{self.log_tail()}"
            )
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM to the process this object started (by PID), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self) -> str:
        """The end of the router's own output, for error messages."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - _LOG_TAIL_CHARS))
            # Both colour their logs even into a file.
            return _ANSI_COLOUR.sub("", log.read().decode(errors="replace"))

    async def _start(self, binary: Path) -> bool:
        """Starts on fresh ports and waits until ready; False when a port was taken first."""
        await self.stop()
        self.port = free_port()
        command = peer_command(self.peer, binary, self.layout, self.policy, self.port, free_port())
        self._log = tempfile.NamedTemporaryFile(prefix=f"triskel-{self.peer.value}-")  # noqa: SIM115
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C reaches the bench, which stops it.
            start_new_session=True,
        )
        try:
            await self._wait_ready()
        except PeerRouterError:
            if re.search(r"address already in use", self.log_tail(), re.I):
                return False
            raise
        return True

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout_s
        expected = {w.url for w in self.layout.workers}
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Polling is the point: registration happens inside another process.
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise PeerRouterError(
                        f"{self.name} exited with code {self._process.returncode} before it "
                        f"was ready:\n{self.log_tail()}"
                    )
                if expected <= await _healthy_worker_urls(session, self.url):
                    return
                if loop.time() > deadline:
                    raise PeerRouterError(
                        f"{self.name} did not list {sorted(expected)} as healthy within "
                        f"{self.startup_timeout_s:g} s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(_POLL_S)


async def _healthy_worker_urls(session: aiohttp.ClientSession, router_url: str) -> set[str]:
    """The worker URLs the router's GET /workers lists as healthy; empty while it starts."""
    try:
        async with session.get(f"{router_url}/workers") as response:
            if response.status != 200:
                return set()
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return set()
    workers = body.get("workers") if isinstance(body, dict) else None
    if not isinstance(workers, list):
        return set()
    return {
        str(w.get("url")).rstrip("/")
        for w in workers
        if isinstance(w, dict) and w.get("is_healthy")
    }


def metric_total(text: str, name: str) -> float:
    """The sum of every sample of metric `name` (all label sets) in Prometheus text."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)", re.M)
    return sum(float(value) for value in pattern.findall(text))


async def scrape(session: aiohttp.ClientSession, worker: HttpWorker) -> str:
    """A worker's GET /metrics; PeerRouterError when it does not answer 200."""
    async with session.get(f"{worker.url}/metrics") as response:
        text = await response.text()
        if response.status != 200:
            raise PeerRouterError(f"{worker.url}/metrics: HTTP {response.status}: {text[:200]}")
        return text


async def worker_totals(
    session: aiohttp.ClientSession, workers: Sequence[HttpWorker], name: str
) -> dict[str, float]:
    """Metric `name` summed over its label sets, per worker id, from each worker's /metrics."""
    texts = await asyncio.gather(*(scrape(session, w) for w in workers))
    return {w.worker_id: metric_total(t, name) for w, t in zip(workers, texts, strict=True)}
