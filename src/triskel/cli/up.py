"""`triskel up`: the router and every pool's workers as local processes.

start every pool's workers ──► write the membership file ──► start the router on it
──► serve: a worker that dies is replaced (with backoff) while the rest serve;
    with `autoscale:`, pools grow and shrink on the planner's decisions
──► Ctrl-C, or the router dies: stop the router, then every worker
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triskel.cli.autoscale_graphs import graph_plans
from triskel.cli.local_pools import LocalPools
from triskel.cli.local_scaler import metrics_reader, run_autoscale
from triskel.cli.local_worker import PoolSettings, worker_config
from triskel.cli.supervisor import Child, ChildFailedError, Supervisor
from triskel.cli.up_config import UpConfig
from triskel.common.api import split_address
from triskel.router.process import RouterProcessConfig
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.process import WorkerProcessConfig

Print = Callable[[str], None]


# Ctrl-C on a laptop should stop promptly: the router goes first, so little is left.
# A scale-in waits for a worker's requests before its SIGTERM (PoolSettings), so this
# bounds only what arrives in its last moments.
UP_DRAIN_TIMEOUT_S = 2.0
MEMBERSHIP_FILE_NAME = "membership.json"
KV_AUTH_KEY_FILE_NAME = "kv-auth-key"


def worker_configs(config: UpConfig) -> list[WorkerProcessConfig]:
    """The workers `up` starts with: one per replica, named `<pool>-<index>`."""
    return [
        worker_config(pool, f"{pool.name}-{index}", UP_DRAIN_TIMEOUT_S)
        for pool in config.pools
        for index in range(pool.replicas.count)
    ]


def write_kv_auth_key(path: Path) -> Path:
    """A fresh KV auth key for this run's workers, readable by this user only: they
    pull KV only from each other (see docs/security.md)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(KvAuthKey.generate().secret)
    return path


async def run_up(config: UpConfig, source: str, say: Print, log_level: str = "warning") -> int:
    """Starts everything, prints the endpoints, serves until a signal; returns an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="triskel-up-") as folder:
        return await _serve(config, source, say, log_level, Path(folder), stop)


async def _serve(
    config: UpConfig, source: str, say: Print, log_level: str, folder: Path, stop: asyncio.Event
) -> int:
    supervisor = Supervisor(log_level)
    pools = LocalPools(
        supervisor,
        config.pools,
        folder / MEMBERSHIP_FILE_NAME,
        say,
        PoolSettings(
            worker_drain_timeout_s=UP_DRAIN_TIMEOUT_S,
            kv_auth_key_file=str(write_kv_auth_key(folder / KV_AUTH_KEY_FILE_NAME)),
        ),
    )
    num_workers = sum(pool.replicas.count for pool in config.pools)
    say(f"Starting Triskel from {source}: {num_workers} workers in {len(config.pools)} pools")
    router: Child | None = None
    scaling: asyncio.Task[None] | None = None
    try:
        started = await pools.start()
        for worker, child in zip(worker_configs(config), started, strict=True):
            pool = worker.pool
            host_tokens = pool.profile.host_kv_capacity_tokens
            say(
                f"  {worker.worker_id:<12} {pool.role:<8} {pool.model:<16} "
                f"{pool.kv_connector.type:<9} grpc {child.ready['grpc']}"
                + (
                    f"  frames :{split_address(frames)[1]}"
                    if (frames := child.ready.get("frames"))
                    else ""
                )
                + (f"  host KV tier {host_tokens:,} tokens" if host_tokens else "")
            )
        processes = config.router.processes
        http_host, _ = split_address(config.router.http)
        router_config = RouterProcessConfig(
            http_address=config.router.http,
            grpc_address=config.router.grpc,
            # Several processes: /metrics where the first sums them (the API port would
            # answer from whichever process took the connection).
            metrics_address=None if processes == 1 else f"{http_host}:0",
            membership_file=pools.membership_path,
            routing=config.routing,
            redis_url=config.router.redis_url,
            auth=config.router.auth,
        )
        router = await supervisor.start(
            "router",
            "router",
            router_config.model_dump(mode="json", by_alias=True),
            flags=("--processes", str(processes)),
        )
        http, grpc_address = router.ready["http"], router.ready["grpc"]
        metrics = router.ready.get("metrics", http)
        shown = "" if processes == 1 else f"  ({processes} processes)"
        say(
            f"  router       HTTP http://{http}/v1 (OpenAI API)  metrics http://{metrics}/metrics{shown}"
        )
        say(f"               gRPC {grpc_address} (triskel.v1.Router)")
        say(f"               auth {_auth_line(config)}")
        say(f"               routing {_routing_line(config)}")
        say(f"Triskel is ready: http://{http}/v1  grpc {grpc_address}  (Ctrl-C stops)")
        if config.autoscale is not None:
            plans = graph_plans(config.autoscale, config.pools)
            read = metrics_reader(f"http://{metrics}/metrics")
            scaling = asyncio.create_task(run_autoscale(plans, pools, read, say, stop))
        exited = asyncio.create_task(router.process.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await _serve_until(exited, stopped, scaling, say)
            router_exited = exited.done()
        finally:
            for task in (exited, stopped):
                task.cancel()
        if router_exited:
            say(f"error: the router exited with code {router.process.returncode}; stopping")
            return 1
        return 0
    except ChildFailedError as error:
        say(f"error: {error}; stopping")
        return 1
    finally:
        say("Stopping Triskel...")
        stop.set()
        if scaling is not None:
            scaling.cancel()
            await asyncio.gather(scaling, return_exceptions=True)
        if router is not None:  # first: nothing new reaches the workers
            await supervisor.stop(router)
        await pools.close()
        await supervisor.stop_all()
        say("Stopped.")


def _routing_line(config: UpConfig) -> str:
    routing = config.routing
    profiles = "; ".join(
        f"{p.name}: "
        + ", ".join(
            ref.plugin_ref if ref.weight is None else f"{ref.plugin_ref} x{ref.weight:g}"
            for ref in p.plugins
        )
        for p in routing.profiles
    )
    mode = routing.disaggregation.mode
    line = f"{mode} disaggregation"
    if mode == "adaptive":
        line += " (triskel_router_prefill_placements_total counts local and remote prefills)"
    return f"{line}; picks by {profiles or 'round-robin'}"


def _auth_line(config: UpConfig) -> str:
    auth = config.router.auth
    if auth is None:
        return "off: anyone who can reach these ports may call them (router.auth to require keys)"
    sources = []
    if auth.api_keys_file is not None:
        sources.append(f"API keys from {auth.api_keys_file}")
    if auth.jwt is not None:
        sources.append(f"tokens from {auth.jwt.issuer}")
    return "on: " + " or ".join(sources)


async def _serve_until(
    exited: asyncio.Task[int],
    stopped: asyncio.Task[Any],
    scaling: asyncio.Task[None] | None,
    say: Print,
) -> None:
    """Until the router exits or a stop is asked for. An autoscaler that fails is said
    once; the deployment keeps serving at its current size."""
    waits: set[asyncio.Task[Any]] = {exited, stopped}
    if scaling is not None:
        waits.add(scaling)
    while not (exited.done() or stopped.done()):
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if scaling in done:
            waits.discard(scaling)
            assert scaling is not None
            if not scaling.cancelled() and scaling.exception() is not None:
                say(f"error: autoscaling stopped ({scaling.exception()!r}); pools keep their size")
