"""`triskel up`: the router and every pool's workers as local processes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from triskel.cli.supervisor import ChildFailedError, Supervisor
from triskel.cli.up_config import PoolEntry, UpConfig
from triskel.common.api import WorkerPoolSpec
from triskel.router.process import RouterProcessConfig
from triskel.workers.process import WorkerProcessConfig

Print = Callable[[str], None]


# Ctrl-C on a laptop should stop promptly: the router goes first, so little is left.
UP_DRAIN_TIMEOUT_S = 2.0


def worker_configs(config: UpConfig) -> list[WorkerProcessConfig]:
    """One worker process per replica, named `<pool>-<index>`."""
    return [
        WorkerProcessConfig(
            worker_id=f"{pool.name}-{index}", pool=_spec(pool), drain_timeout_s=UP_DRAIN_TIMEOUT_S
        )
        for pool in config.pools
        for index in range(pool.replicas.count)
    ]


def _spec(pool: PoolEntry) -> WorkerPoolSpec:
    return WorkerPoolSpec.model_validate(pool.model_dump(exclude={"name"}))


async def run_up(config: UpConfig, source: str, say: Print, log_level: str = "warning") -> int:
    """Starts everything, prints the endpoints, serves until a signal; returns an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(log_level)
    workers = worker_configs(config)
    say(f"Starting Triskel from {source}: {len(workers)} workers in {len(config.pools)} pools")
    try:
        started = await asyncio.gather(
            *(
                supervisor.start(w.worker_id, "worker", w.model_dump(mode="json", by_alias=True))
                for w in workers
            )
        )
        for worker, child in zip(workers, started, strict=True):
            pool = worker.pool
            say(
                f"  {worker.worker_id:<12} {pool.role:<8} {pool.model:<16} "
                f"{pool.kv_connector.type:<9} grpc {child.ready['grpc']}"
            )
        router_config = RouterProcessConfig(
            http_address=config.router.http,
            grpc_address=config.router.grpc,
            workers=[child.ready["grpc"] for child in started],
            routing=config.routing,
            redis_url=config.router.redis_url,
        )
        router = await supervisor.start(
            "router", "router", router_config.model_dump(mode="json", by_alias=True)
        )
        http, grpc_address = router.ready["http"], router.ready["grpc"]
        say(f"  router       HTTP http://{http}/v1 (OpenAI API)  metrics http://{http}/metrics")
        say(f"               gRPC {grpc_address} (triskel.v1.Router)")
        say(f"Triskel is ready: http://{http}/v1  grpc {grpc_address}  (Ctrl-C stops)")
        exited = asyncio.create_task(supervisor.wait_any_exit())
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (exited, stopped):
            task.cancel()
        if exited in done:
            child = exited.result()
            say(f"error: {child.name} exited with code {child.process.returncode}; stopping")
            return 1
        return 0
    except ChildFailedError as error:
        say(f"error: {error}; stopping")
        return 1
    finally:
        say("Stopping Triskel...")
        await supervisor.stop_all()
        say("Stopped.")
