"""Where the router's time goes: py-spy on a router under closed-loop load (issue 21).

    python bench/profile_router.py [--seconds 25] [--clients 32] [--max-tokens 16]
        [--no-stream] [--format flamegraph|raw|speedscope] [--out docs/img/flame.svg]
        [--rate 100]

One unified mock worker generating instantly (time scale 0) and a router in front of it,
each its own process; `--clients` clients send short completions over HTTP one after
another for `--seconds` while `py-spy record` samples the router process (every thread:
the event loop and gRPC's poller). Prints the requests per second reached. py-spy comes
from PyPI (`pip install py-spy`); it reads the router's memory, so it needs the same user
(or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

import aiohttp

from triskel.cli.supervisor import Supervisor
from triskel.common.api import WorkerPoolSpec
from triskel.router.process import RouterProcessConfig
from triskel.workers.process import WorkerProcessConfig

MODEL = "m"


def instant_pool(time_scale: float = 0.0) -> WorkerPoolSpec:
    """Unified mock workers generating at `time_scale` (0: at once), with room to spare."""
    return WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": MODEL,
            "profile": {"kvCapacityTokens": 262_144, "timeScale": time_scale},
        }
    )


async def profile(args: argparse.Namespace) -> float:
    py_spy = shutil.which("py-spy") or str(Path(sys.prefix) / "bin" / "py-spy")
    supervisor = Supervisor()
    try:
        worker_config = WorkerProcessConfig(worker_id="unified-0", pool=instant_pool())
        worker = await supervisor.start(
            "unified-0", "worker", worker_config.model_dump(mode="json", by_alias=True)
        )
        router_config = RouterProcessConfig(
            http_address="127.0.0.1:0", grpc_address="127.0.0.1:0", workers=[worker.ready["grpc"]]
        )
        router = await supervisor.start(
            "router", "router", router_config.model_dump(mode="json", by_alias=True)
        )
        url = f"http://{router.ready['http']}/v1/completions"
        record = [py_spy, "record", "--pid", str(router.pid), "--duration", str(args.seconds)]
        record += ["--rate", str(args.rate)]
        record += ["--nonblocking", "--format", args.format, "--output", args.out]
        spy = await asyncio.create_subprocess_exec(*record)
        num_done = await load(url, args)
        await spy.wait()
        seconds: int = args.seconds
        return num_done / seconds
    finally:
        await supervisor.stop_all()


async def load(url: str, args: argparse.Namespace) -> int:
    """Closed loop: each client sends its next request when the last one ended."""
    num_done = 0
    end_at = time.monotonic() + args.seconds

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal num_done
        while time.monotonic() < end_at:
            body = {
                "model": MODEL,
                "prompt": f"client {index} request {num_done}: " + "word " * 50,
                "max_tokens": args.max_tokens,
                "ignore_eos": True,
                "stream": args.stream,
            }
            async with session.post(url, json=body) as response:
                await response.read()
            num_done += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session, i) for i in range(args.clients)))
    return num_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=25)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--format", default="flamegraph", choices=["flamegraph", "raw", "speedscope"]
    )
    parser.add_argument("--out", default="router-profile.svg")
    # Samples a second (py-spy's default: 100); more, for a breakdown of short stretches.
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    rate = asyncio.run(profile(args))
    print(f"{rate:.0f} requests/s through the router ({args.clients} clients)")


if __name__ == "__main__":
    main()
