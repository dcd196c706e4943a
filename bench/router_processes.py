"""Requests per second through `triskel router --processes N` (issue 21, "every core").

    python bench/router_processes.py [--processes 1,2] [--rounds 3] [--seconds 15]
        [--clients 64] [--max-tokens 16] [--workers 2] [--time-scale 0]

Instant mock workers (time scale 0; `--time-scale 1` decodes in real time, a token
every step, so the router relays each token alone, as it does live) and the router,
each its own process; closed-loop clients (`--clients`, in this process, a new request
when the last ended) send streaming completions of `--max-tokens` (with
`ignore_eos`) for `--seconds`. Each round runs every `--processes` value back to
back, so the machine's load varies alike for all. Printed per run: requests/s, and the
CPU seconds per wall second used by the router's processes, the workers and this
client, and the router's CPU per finished request and per relayed token (its CPU time
over the finished requests, and over their tokens, requests' own costs included): on a
machine with fewer free cores than router processes plus what the workers and the
client take, more processes cannot get more CPU, and the CPU columns say so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from cpu_window import cpu_seconds
from profile_router import instant_pool, load  # the same workers and closed loop
from router_child import started_router

from triskel.cli.supervisor import Supervisor
from triskel.workers.process import WorkerProcessConfig


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


async def one_run(
    processes: int, workers: list[str], worker_pids: list[int], args: argparse.Namespace
) -> dict[str, float]:
    config = {"httpAddress": "127.0.0.1:0", "grpcAddress": "127.0.0.1:0", "workers": workers}
    async with started_router(config, processes) as router:
        router_pids = [router.process.pid, *children_of(router.process.pid)]
        url = f"http://{router.ready['http']}/v1/completions"
        before = {pid: cpu_seconds(pid) for pid in router_pids + worker_pids}
        client_before, started = time.process_time(), time.monotonic()
        done = await load(url, args)
        wall_s = time.monotonic() - started
        used = {pid: cpu_seconds(pid) - before[pid] for pid in before}
        router_s = sum(used[p] for p in router_pids)
        return {
            "requests_per_s": done / wall_s,
            "router_us_per_request": 1e6 * router_s / max(1, done),
            "router_us_per_token": 1e6 * router_s / max(1, done * args.max_tokens),
            "router_cores": router_s / wall_s,
            "worker_cores": sum(used[p] for p in worker_pids) / wall_s,
            "client_cores": (time.process_time() - client_before) / wall_s,
        }


async def bench(args: argparse.Namespace) -> None:
    supervisor = Supervisor()
    try:
        pool = instant_pool(args.time_scale)
        started = [
            await supervisor.start(
                f"unified-{i}",
                "worker",
                WorkerProcessConfig(worker_id=f"unified-{i}", pool=pool).model_dump(
                    mode="json", by_alias=True
                ),
            )
            for i in range(args.workers)
        ]
        addresses = [w.ready["grpc"] for w in started]
        pids = [w.pid for w in started]
        print(
            f"{os.cpu_count()} cores; {args.workers} workers at time scale {args.time_scale:g}; "
            f"{args.clients} clients; max_tokens {args.max_tokens}, streaming; "
            f"{args.seconds} s per run"
        )
        print(
            "round  processes  requests/s  router cores  worker cores  client cores  "
            "router µs/request  router µs/token"
        )
        for round_number in range(1, args.rounds + 1):
            for processes in args.processes:
                r = await one_run(processes, addresses, pids, args)
                print(
                    f"{round_number:>5}  {processes:>9}  {r['requests_per_s']:>10.0f}  "
                    f"{r['router_cores']:>12.2f}  {r['worker_cores']:>12.2f}  "
                    f"{r['client_cores']:>12.2f}  {r['router_us_per_request']:>17.0f}  "
                    f"{r['router_us_per_token']:>15.1f}"
                )
    finally:
        await supervisor.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--processes", type=lambda s: [int(p) for p in s.split(",")], default=[1, 2]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    # 0: workers generate at once; 1: in real time (the profile's step times).
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
