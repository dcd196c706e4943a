"""Reads what `sitecustomize.py` here recorded: each hop's share of a routed request's
time to first token, median / p90 / p99 / worst (ms).

    python bench/diagnostics/request_spans/report.py [DIR]   (default /tmp/request-spans)

Router and worker records are joined by the worker-side request id, so the two loopback
hops (the call going out, the first tokens coming back) are measured, not guessed.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any


def _quantile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _records(folder: Path, role: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob(f"{role}-*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def main() -> None:
    folder = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("REQUEST_SPANS_DIR", "/tmp/request-spans")
    )
    routed = [r for r in _records(folder, "router") if {"call", "reply", "write"} <= r.keys()]
    workers = _records(folder, "worker")
    by_id = {w["id"]: w for w in workers if w["path"] == "frames"}
    joined = [(r, by_id[r["id"]]) for r in routed if r["id"] in by_id]
    spans: dict[str, list[float]] = {
        "router: arrival to worker call": [r["call"] - r["arrival"] for r in routed],
        "hop: call to the worker reading it": [w["open"] - r["call"] for r, w in joined],
        "worker (frames): call read to first tokens": [w["first"] - w["open"] for _, w in joined],
        "hop: first tokens back to the router": [r["reply"] - w["first"] for r, w in joined],
        "router: first reply to client write": [r["write"] - r["reply"] for r in routed],
        "router, whole: arrival to client write": [r["write"] - r["arrival"] for r in routed],
        "worker (HTTP, direct): start to first write": [
            w["first"] - w["start"] for w in workers if w["path"] == "http"
        ],
    }
    _table(spans)
    stepped = [r for r in routed if "plugins" in r]
    if stepped:
        print()
        _table(_steps(stepped))


def _steps(routed: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The router's path to the call as consecutive stretches: each noted point to the
    next (in the order they were noted), and the pick's plugins."""
    stretches: dict[str, list[float]] = {}
    for span in routed:
        points = sorted(
            (time_s, name) for name, time_s in span.items() if ":" in name or name == "arrival"
        )
        points = [p for p in points if p[0] <= span["call"]] + [(span["call"], "call")]
        for (start_s, start), (end_s, end) in itertools.pairwise(points):
            stretches.setdefault(f"{start} to {end}", []).append(end_s - start_s)
        for plugin, seconds in span["plugins"].items():
            stretches.setdefault(f"  pick: {plugin}", []).append(seconds)
    return stretches


def _table(spans: dict[str, list[float]]) -> None:
    print("| span | n | p50 | p90 | p99 | worst (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds in spans.items():
        if not seconds:
            continue
        cells = [_quantile(seconds, q) for q in (0.5, 0.9, 0.99)] + [max(seconds)]
        print(f"| {name} | {len(seconds)} | " + " | ".join(f"{1e3 * c:.2f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
