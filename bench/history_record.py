"""What recording a pick into the routing history costs once its LRUs are full.

    python bench/history_record.py [--workers 16] [--records 20000] [--capacity 31250]

Each record is a 128-block prompt, 64 blocks from one of 32 shared prefixes and 64 of
its own, sent to a random worker (`ApproximatePrefixIndex.record`, what `Scheduler.sent`
does per request). The first half of the records fills the LRUs (llm-d's 31,250 blocks a
worker by default); the second half is timed: median, p99, p99.9 and worst, and how
many records took over 0.5 ms (the dicts compacting or growing under them).
"""

from __future__ import annotations

import argparse
import random
import time

from triskel.common.hashing import BlockHash
from triskel.router.scheduling.producers.approx_prefix_index import (
    LLMD_CAPACITY_BLOCKS_PER_WORKER,
    ApproximatePrefixIndex,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=LLMD_CAPACITY_BLOCKS_PER_WORKER)
    args = parser.parse_args()
    rng = random.Random(3)
    now_s = 0.0
    index = ApproximatePrefixIndex(lambda: now_s, capacity_blocks_per_worker=args.capacity)
    shared = [[BlockHash(rng.getrandbits(63)) for _ in range(64)] for _ in range(32)]
    workers = [f"w{i}" for i in range(args.workers)]
    seconds = []
    for _ in range(args.records):
        prompt = rng.choice(shared) + [BlockHash(rng.getrandbits(63)) for _ in range(64)]
        now_s += 0.001  # 1,000 picks a second: nothing expires (120 s TTL)
        started = time.perf_counter()
        index.record(rng.choice(workers), prompt)
        seconds.append(time.perf_counter() - started)
    timed = sorted(seconds[args.records // 2 :])

    def at(quantile: float) -> float:
        return 1e6 * timed[min(len(timed) - 1, int(quantile * len(timed)))]

    print(
        f"{len(timed)} records once full ({args.workers} workers x {args.capacity:,} blocks):"
        f" p50 {at(0.5):.0f} µs, p99 {at(0.99):.0f}, p99.9 {at(0.999):.0f},"
        f" worst {1e6 * timed[-1]:,.0f}; over 0.5 ms: {sum(s > 5e-4 for s in timed)};"
        f" all of them {sum(timed):.2f} s"
    )


if __name__ == "__main__":
    main()
