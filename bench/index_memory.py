"""Memory of the router's prefix indexes per block and per worker, at fleet sizes.

    python bench/index_memory.py [--blocks-per-worker 512] [--workers 1024,10000]

Each worker holds 4 of 32 shared 64-block prefixes (as the decision-time bench's
fleet does) and then blocks of its own, `--blocks-per-worker` in all, reported as KV
events into the precise index (`KvBlockIndex`); the same blocks are recorded into the
approximate index (`ApproximatePrefixIndex`, the router's history). Memory is what
`tracemalloc` sees allocated by building each index, over the (worker, block) entries
and over the distinct blocks. A holder mask is a Python int as wide as its highest
slot, so a block held by one worker of 10,000 costs up to 1.25 kB of mask.
"""

from __future__ import annotations

import argparse
import gc
import random
import tracemalloc
from collections.abc import Callable

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.approx_prefix_index import ApproximatePrefixIndex
from triskel.router.scheduling.producers.kv_index import KvBlockIndex

NUM_SHARED_PREFIXES = 32
SHARED_PREFIX_BLOCKS = 64


def fleet(num_workers: int, blocks_per_worker: int, seed: int = 3) -> dict[str, list[BlockHash]]:
    """Each worker's cached blocks (chained hashes stand-ins: distinct random ints)."""
    rng = random.Random(seed)
    prefixes = [
        [BlockHash(rng.getrandbits(63)) for _ in range(SHARED_PREFIX_BLOCKS)]
        for _ in range(NUM_SHARED_PREFIXES)
    ]
    held: dict[str, list[BlockHash]] = {}
    for worker in range(num_workers):
        blocks = [h for prefix in rng.sample(prefixes, 4) for h in prefix][:blocks_per_worker]
        blocks += [BlockHash(rng.getrandbits(63)) for _ in range(blocks_per_worker - len(blocks))]
        held[f"w{worker}"] = blocks
    return held


def precise(held: dict[str, list[BlockHash]]) -> KvBlockIndex:
    index = KvBlockIndex()
    for worker_id, blocks in held.items():
        index.apply_snapshot(worker_id, [blocks], 0)
    return index


def history(held: dict[str, list[BlockHash]]) -> ApproximatePrefixIndex:
    index = ApproximatePrefixIndex(lambda: 0.0)
    for worker_id, blocks in held.items():
        index.record(worker_id, blocks)
    return index


def measured(
    build: Callable[[dict[str, list[BlockHash]]], object], held: dict[str, list[BlockHash]]
) -> int:
    """Bytes allocated and still held by what `build(held)` returns."""
    gc.collect()
    tracemalloc.start()
    built = build(held)
    gc.collect()
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del built
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks-per-worker", type=int, default=512)
    parser.add_argument("--workers", default="1024,10000")
    args = parser.parse_args()
    print("## Prefix index memory (bytes)\n")
    print("| workers | (worker, block) entries | distinct blocks | index | per entry | per block |")
    print("|---:|---:|---:|---|---:|---:|")
    for num_workers in (int(n) for n in args.workers.split(",")):
        held = fleet(num_workers, args.blocks_per_worker)
        num_entries = sum(len(blocks) for blocks in held.values())
        num_distinct = len({h for blocks in held.values() for h in blocks})
        for name, build in (("precise (KV events)", precise), ("history", history)):
            size = measured(build, held)
            print(
                f"| {num_workers:,} | {num_entries:,} | {num_distinct:,} | {name} "
                f"| {size / num_entries:,.0f} | {size / num_distinct:,.0f} |"
            )
    print()


if __name__ == "__main__":
    main()
