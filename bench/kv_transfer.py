"""KV pull throughput per connector over loopback, exporter in a separate process.

    python bench/kv_transfer.py [--size-mib 64] [--repeats 5] [--block-kib 512] [--fragmented]

For each connector: one warm-up pull (connection, handshake, first-touch pages),
then `--repeats` timed pulls of `--size-mib` MiB, each a fresh export (exports are
single-use). A pull is timed end to end as a decode worker sees it: control round
trip, data plane, and the checksum of every received block. The verification share
is measured on its own over the same blocks, and "no verify" is the pull time minus
it. A plain in-process memoryview copy of the same size is the ceiling.

`--fragmented` gives the importer its blocks in reverse order, so no two neighbours
are adjacent in memory (a well-used paged KV pool), which defeats run coalescing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

from google.protobuf import json_format

from triskel.v1 import worker_pb2
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvConnector
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.registry import connector_types, create_connector

_GB = 1e9
# The graph key reaches the exporter process the way a pod's env would carry it.
_KEY_ENV = "TRISKEL_BENCH_KV_AUTH_KEY"


@dataclass(frozen=True, slots=True)
class Geometry:
    num_blocks: int
    block_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.num_blocks * self.block_bytes


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    first_s: float | None
    pull_s: list[float]
    verify_s: list[float]


# -- the exporter process ----------------------------------------------------------------


async def serve_exports(connector_type: str, geometry: Geometry) -> None:
    """Child mode: export every block once per stdin line ("export <id>"); EOF ends it."""
    arena = KvArena(geometry.num_blocks, geometry.block_bytes)
    for block_id in range(geometry.num_blocks):
        arena.fill_block(block_id, block_id)
    connector = create_connector(connector_type, {})
    key = KvAuthKey(os.environ[_KEY_ENV].encode())
    await connector.start(arena, "bench-exporter", auth_key=key)
    loop = asyncio.get_running_loop()
    block_ids = list(range(geometry.num_blocks))
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        request_id = line.split()[1]
        handle = connector.describe(request_id, block_ids, geometry.num_blocks)
        print(json.dumps(json_format.MessageToDict(handle.to_proto())), flush=True)
    await connector.close()
    arena.close()


class ExporterProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(
        cls, connector_type: str, geometry: Geometry, key: KvAuthKey
    ) -> ExporterProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            connector_type,
            "--num-blocks",
            str(geometry.num_blocks),
            "--block-bytes",
            str(geometry.block_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,  # Mooncake logs there
            env={**os.environ, _KEY_ENV: key.secret.decode()},
        )
        return cls(process)

    async def export(self, request_id: str) -> KvHandle:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"export {request_id}\n".encode())
        await self._process.stdin.drain()
        line = await asyncio.wait_for(self._process.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"exporter exited with {await self._process.wait()}")
        message = json_format.ParseDict(json.loads(line), worker_pb2.KvHandle())
        return KvHandle.from_proto(message)

    async def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 30)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


# -- measurements ------------------------------------------------------------------------


async def measure_connector(
    connector_type: str, geometry: Geometry, repeats: int, fragmented: bool
) -> Row:
    key = KvAuthKey.generate()  # both ends hold it, as a graph's workers do
    exporter = await ExporterProcess.start(connector_type, geometry, key)
    arena = KvArena(geometry.num_blocks, geometry.block_bytes)
    importer = create_connector(connector_type, {})
    await importer.start(arena, "bench-importer", auth_key=key)
    dest_ids = list(range(geometry.num_blocks))
    if fragmented:
        dest_ids.reverse()
    pull_s: list[float] = []
    verify_s: list[float] = []
    try:
        first_s = await timed_pull(importer, await exporter.export("warm-up"), dest_ids)
        for repeat in range(repeats):
            handle = await exporter.export(f"pull-{repeat}")
            pull_s.append(await timed_pull(importer, handle, dest_ids))
            started = time.perf_counter()
            for block_id in dest_ids:
                arena.checksum(block_id)
            verify_s.append(time.perf_counter() - started)
    finally:
        await importer.close()
        arena.close()
        await exporter.stop()
    return Row(connector_type, first_s, pull_s, verify_s)


async def timed_pull(importer: KvConnector, handle: KvHandle, dest_ids: list[int]) -> float:
    started = time.perf_counter()
    await importer.receive(handle, dest_ids, timeout_s=120)
    return time.perf_counter() - started


def measure_memcpy(geometry: Geometry, repeats: int) -> Row:
    source = KvArena(1, geometry.total_bytes)
    dest = KvArena(1, geometry.total_bytes)
    source.fill_block(0, 1)
    copy_s: list[float] = []
    with source.view(0) as src, dest.view(0) as dst:
        dst[:] = src  # first touch, like the connectors' warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            dst[:] = src
            copy_s.append(time.perf_counter() - started)
    source.close()
    dest.close()
    return Row("memoryview copy (in-process)", None, copy_s, [])


# -- report ------------------------------------------------------------------------------


def gb_per_s(num_bytes: int, seconds: float) -> float:
    return num_bytes / seconds / _GB


def print_table(rows: list[Row], geometry: Geometry, repeats: int, fragmented: bool) -> None:
    size = geometry.total_bytes
    layout = "fragmented" if fragmented else "contiguous"
    print(
        f"\nKV pull over loopback: {size >> 20} MiB in {geometry.num_blocks} blocks of "
        f"{geometry.block_bytes >> 10} KiB ({layout} destination), {repeats} repeats, GB/s\n"
    )
    header = (
        f"{'connector':<30}{'median':>9}{'best':>9}{'no-verify med':>15}"
        f"{'no-verify best':>16}{'first pull':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        median_s, best_s = statistics.median(row.pull_s), min(row.pull_s)
        cells = [f"{gb_per_s(size, median_s):9.2f}", f"{gb_per_s(size, best_s):9.2f}"]
        if row.verify_s:
            bare_s = [p - v for p, v in zip(row.pull_s, row.verify_s, strict=True)]
            cells += [
                f"{gb_per_s(size, statistics.median(bare_s)):15.2f}",
                f"{gb_per_s(size, min(bare_s)):16.2f}",
            ]
        else:
            cells += [f"{'-':>15}", f"{'-':>16}"]
        first = f"{gb_per_s(size, row.first_s):12.2f}" if row.first_s else f"{'-':>12}"
        print(f"{row.name:<30}{''.join(cells)}{first}")
    verify = [v for row in rows for v in row.verify_s]
    if verify:
        print(f"\nchecksum (XXH3-64) alone: median {gb_per_s(size, statistics.median(verify)):.2f}")
    print("no-verify = pull time minus the separately measured checksum time of the same blocks")


async def run_benchmark(args: argparse.Namespace) -> None:
    block_bytes = args.block_kib << 10
    geometry = Geometry(max(1, (args.size_mib << 20) // block_bytes), block_bytes)
    rows = []
    for connector_type in connector_types():
        print(f"measuring {connector_type} ...", file=sys.stderr, flush=True)
        rows.append(
            await measure_connector(connector_type, geometry, args.repeats, args.fragmented)
        )
    rows.append(measure_memcpy(geometry, args.repeats))
    print_table(rows, geometry, args.repeats, args.fragmented)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block-kib", type=int, default=512)
    parser.add_argument("--fragmented", action="store_true")
    # Internal: run as the exporter process.
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--num-blocks", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--block-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size_mib < 1 or args.repeats < 1 or args.block_kib < 1:
        parser.error("--size-mib, --repeats and --block-kib must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    if args.serve:
        asyncio.run(serve_exports(args.serve, Geometry(args.num_blocks, args.block_bytes)))
    else:
        asyncio.run(run_benchmark(args))


if __name__ == "__main__":
    main()
