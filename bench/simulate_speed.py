"""How fast the simulator replays a trace: wall seconds per run, and per simulated second.

    python bench/simulate_speed.py [--trace PATH] [--limit N] [--prefill 8] [--decode 8]
                                   [--policy round-robin|prefix|dualmap] [--routing FILE]
                                   [--breakdown]

The issue's target: the full Mooncake conversation trace (12,031 requests) on 16
instances in under 60 s on one core. `--breakdown` times the run's main parts
(engine steps, arrivals, transfer completions, prefix matches in the router's KV
index) by wrapping them, which adds a little overhead of its own; parts nest (an
arrival's picks match prefixes and its first step is an engine step).
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from triskel.common.routing_api import RoutingSettings
from triskel.simulator import cache_view, simulation
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.run import simulate
from triskel.traces import load_trace
from triskel.workers.engine import core

MOONCAKE = "/work/shared/traces/mooncake/conversation_trace.jsonl"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PREFIX = {
    "plugins": [
        {"type": "precise-prefix-scorer"},
        {"type": "least-load-scorer"},
        {"type": "max-score-picker"},
    ],
    "profiles": [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "precise-prefix-scorer", "weight": 2},
                {"pluginRef": "least-load-scorer", "weight": 1},
                {"pluginRef": "max-score-picker"},
            ],
        }
    ],
    "defaultProfile": "default",
}


def routing_for(policy: str, dualmap_file: Path = EXAMPLES / "dualmap.yaml") -> RoutingSettings:
    if policy == "round-robin":
        return RoutingSettings()
    if policy == "prefix":
        return RoutingSettings.model_validate(PREFIX)
    document = yaml.safe_load(dualmap_file.read_text(encoding="utf-8"))
    return RoutingSettings.model_validate(document["routing"])


def time_parts(seconds: dict[str, float]) -> None:
    """Wraps the run's main parts so each call adds its wall time to `seconds`."""
    parts: list[tuple[Any, str, str]] = [
        (core.EngineCore, "step", "engine step()"),
        (simulation.Simulation, "_arrive", "arrivals (tokens, hashes, pick, add, first step)"),
        (cache_view.CachedBlocksView, "match_lengths", "prefix matches in the router's index"),
        (simulation.Simulation, "_transfer_done", "transfer completions (load, release)"),
    ]
    for owner, name, label in parts:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, _f: Callable[..., Any] = original, _l: str = label) -> Any:
            started = time.perf_counter()
            try:
                return _f(*args)
            finally:
                seconds[_l] += time.perf_counter() - started

        setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trace", default=MOONCAKE)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--prefill", type=int, default=8)
    parser.add_argument("--decode", type=int, default=8)
    parser.add_argument("--policy", choices=["round-robin", "prefix", "dualmap"])
    # Compare runs on a frozen copy: examples/dualmap.yaml changes as the policy is tuned.
    parser.add_argument(
        "--routing", type=Path, default=EXAMPLES / "dualmap.yaml", help="dualmap's config file"
    )
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    seconds: dict[str, float] = collections.defaultdict(float)
    if args.breakdown:
        time_parts(seconds)
    trace = load_trace(args.trace, limit=args.limit)
    shape = ClusterShape(num_prefill=args.prefill, num_decode=args.decode)
    policy = args.policy or "round-robin"
    result = simulate(trace, shape, routing_for(policy, args.routing), policy=policy)
    finished = [r for r in result.requests if r.is_finished]
    cached = sum(r.num_cached_tokens for r in finished)
    print(
        f"{policy}: {trace.num_requests} requests, {result.duration_s:.0f} simulated s in "
        f"{result.wall_s:.1f} wall s ({result.wall_s / max(result.duration_s, 1e-9):.4f} per "
        f"simulated s); {len(finished)} finished; prefix hit ratio "
        f"{cached / max(1, sum(r.num_input_tokens for r in finished)):.3f}"
    )
    for label, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {label:52s} {value:6.1f} s  {100 * value / result.wall_s:5.1f}%")


if __name__ == "__main__":
    main()
