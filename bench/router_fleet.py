"""The deployments `compare_routers.py` measures: mock workers, and a router in front.

A fleet is N mock workers, each its own `triskel worker` process serving the
vLLM-compatible HTTP API and Triskel's own worker protocol (gRPC, with Decode, Prefill
and Cancel also as frames): all unified, or half prefill (with SGLang-style bootstrap
listeners) and half decode. A contender is what the client talks to:

    smg           SGLang's gateway, `--policy <policy>`        (tests/support/peer_routers.py)
    vllm-router   vLLM's router, `--policy <policy>`
    triskel       `triskel router`, routing from <policy>.yaml, workers given either
                  as {url, api: vllm}   (worker api vllm: their HTTP API, as the peers)
                  or as "host:port"     (worker api triskel: gRPC, calls as frames;
                                         each worker reports its role in GetInfo)

Every contender gets a fresh fleet, so each starts with cold prefix caches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from pydantic import ValidationError

from triskel.cli.supervisor import Supervisor
from triskel.router.backends.addresses import WorkerApi
from triskel.router.process import RouterProcessConfig

from support.peer_routers import (
    HttpWorker,
    Peer,
    PeerLayout,
    PeerRouter,
    start_http_worker,
)

MODEL = "bench"
READY_TIMEOUT_S = 60.0


class Shape(StrEnum):
    UNIFIED = "unified"
    PD = "pd"


class RouterKind(StrEnum):
    SMG = "smg"
    VLLM_ROUTER = "vllm-router"
    TRISKEL = "triskel"


@dataclass(frozen=True, slots=True)
class Contender:
    """One router with one policy: a peer's `--policy` name or a Triskel routing YAML.

    `worker_api` is how Triskel's router reaches the workers; the peers know only
    vLLM's HTTP API, so theirs is always vllm.
    """

    kind: RouterKind
    policy: str = ""
    worker_api: WorkerApi = WorkerApi.VLLM

    def __post_init__(self) -> None:
        if self.kind is not RouterKind.TRISKEL and self.worker_api is not WorkerApi.VLLM:
            raise ValueError(
                f"{self.kind} --policy {self.policy}: worker api {self.worker_api}, but "
                "peers reach workers over vLLM's HTTP API only"
            )

    @property
    def policy_label(self) -> str:
        """The report's Policy cell: the peer's policy, or the YAML's file name, saying
        when the workers are reached over Triskel's protocol (HTTP rows keep the bare
        name, as in the reports before that option)."""
        if self.kind is not RouterKind.TRISKEL:
            return self.policy
        name = Path(self.policy).name
        return name if self.worker_api is WorkerApi.VLLM else f"{name} (workers over frames)"


@dataclass(frozen=True, slots=True)
class FleetSpec:
    shape: Shape
    num_workers: int
    # The mock engine's modelled GPU runs 1 / time_scale times faster than real time.
    time_scale: float

    def roles(self) -> list[str]:
        if self.shape is Shape.UNIFIED:
            return ["unified"] * self.num_workers
        if self.num_workers < 2:
            raise ValueError(f"--workers {self.num_workers}: the pd shape needs at least 2")
        num_prefill = self.num_workers // 2
        return ["prefill"] * num_prefill + ["decode"] * (self.num_workers - num_prefill)

    def pool(self, role: str) -> dict[str, Any]:
        return {"role": role, "model": MODEL, "profile": {"timeScale": self.time_scale}}


@contextlib.asynccontextmanager
async def fleet(spec: FleetSpec) -> AsyncIterator[PeerLayout]:
    """Starts the fleet's workers (in parallel) and stops them, by PID, on exit."""
    supervisor = Supervisor()
    try:
        workers: list[HttpWorker] = list(
            await asyncio.gather(
                *(
                    start_http_worker(supervisor, f"{role}-{i}", spec.pool(role), role == "prefill")
                    for i, role in enumerate(spec.roles())
                )
            )
        )
        if spec.shape is Shape.UNIFIED:
            yield PeerLayout(unified=tuple(workers))
        else:
            yield PeerLayout(
                prefill=tuple(w for w in workers if w.role == "prefill"),
                decode=tuple(w for w in workers if w.role == "decode"),
            )
    finally:
        await supervisor.stop_all()


def direct_workers(layout: PeerLayout) -> tuple[HttpWorker, ...]:
    """The workers that serve a whole request by themselves: the latency reference.

    In P/D those are the decode workers, which prefill locally when a request carries
    no KV hand-off; a router's P/D path then adds the prefill worker and the KV hop.
    """
    return layout.decode if layout.is_disaggregated else layout.unified


def triskel_workers(layout: PeerLayout, worker_api: WorkerApi) -> list[str | dict[str, str]]:
    """The router config's `workers:` for the fleet. Pure.

    vllm: each worker's HTTP API URL, its role asked of it there. triskel: each worker's
    plain gRPC host:port, its role from GetInfo, Decode / Prefill / Cancel as frames on
    the port GetInfo advertises; in P/D the router's Prefill answers with a KV handle
    its Decode call passes on (the workers' TCP connector, under their shared key).
    """
    if worker_api is WorkerApi.VLLM:
        return [{"url": w.url, "api": str(WorkerApi.VLLM)} for w in layout.workers]
    # A worker without frames would be called over gRPC: not what the row says it measures.
    if no_frames := [w.worker_id for w in layout.workers if w.frames_address is None]:
        raise ValueError(f"worker api triskel: {', '.join(no_frames)} serve no frames")
    return [w.grpc_address for w in layout.workers]


def triskel_router_config(
    layout: PeerLayout, policy_file: Path, worker_api: WorkerApi = WorkerApi.VLLM
) -> dict[str, Any]:
    """`triskel router --config-json` for the fleet, workers reached over `worker_api`."""
    document = yaml.safe_load(policy_file.read_text())
    if not isinstance(document, dict) or "routing" not in document:
        raise ValueError(f"{policy_file}: no `routing:` key")
    return {
        "httpAddress": "127.0.0.1:0",
        "grpcAddress": "127.0.0.1:0",
        "workers": triskel_workers(layout, worker_api),
        # The default, said here because the report's label promises frames.
        "workerFrames": True,
        "routing": document["routing"],
    }


def triskel_serves_vllm_workers() -> str | None:
    """None when this Triskel's router takes vLLM-API workers, else why not."""
    config = {"workers": [{"url": "http://127.0.0.1:1", "api": "vllm"}]}
    try:
        RouterProcessConfig.model_validate(config)
    except ValidationError as error:
        return f"RouterProcessConfig refuses {{url, api: vllm}} workers: {error.errors()[0]['msg']}"
    return None


@contextlib.asynccontextmanager
async def serve(contender: Contender, layout: PeerLayout) -> AsyncIterator[str]:
    """Starts `contender` in front of `layout`; yields the base URL clients send to,
    once it lists the model."""
    if contender.kind is RouterKind.TRISKEL:
        supervisor = Supervisor()
        try:
            config = triskel_router_config(layout, Path(contender.policy), contender.worker_api)
            child = await supervisor.start(
                "router", "router", config, ready_timeout_s=READY_TIMEOUT_S
            )
            url = f"http://{child.ready['http']}"
            await wait_for_model(url)
            yield url
        finally:
            await supervisor.stop_all()
        return
    async with PeerRouter(Peer(contender.kind.value), layout, contender.policy) as router:
        await wait_for_model(router.url)
        yield router.url


async def wait_for_model(url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Polls GET /v1/models until it lists MODEL; TimeoutError naming the URL after the
    deadline (a router may answer before its workers are registered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
        while loop.time() < deadline:
            try:
                async with session.get(f"{url}/v1/models") as response:
                    last = f"HTTP {response.status}: {(await response.text())[:200]}"
                    if response.status == 200 and f'"{MODEL}"' in last:
                        return
            except (aiohttp.ClientError, TimeoutError) as error:
                last = str(error) or type(error).__name__
            # Polling is the point: registration happens in another process.
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url}/v1/models did not list {MODEL} within {timeout_s:g} s: {last}")
