"""Elastic EP against whole EP groups at equal GPU-hours: a sweep of the minimum ranks.

    python bench/elastic_ep_sweep.py --trace PATH [--rate-scale 3] [--ep 4]
        [--burst START,END,FACTOR ...] [--min-ranks 4,8,12,16] [--jobs 2] [--json OUT]

`triskel simulate --autoscale triskel --ep 4` compares the two at one setting, where
they end up with different GPU-hours. Here the same knob, the pool's minimum size in
ranks (`--min-replicas`), is swept for both: a higher floor buys attainment with
GPU-hours the same way under either actuator. Each mode gives a curve of (GPU-hours,
attainment); every point of one is compared with the other's curve linearly
interpolated at the same GPU-hours (no extrapolation: outside the other's range the
gap is not given). Floors are multiples of the group size so that whole groups and
elastic EP have the same floor; every run starts at its floor (at least `--unified`).
Only Triskel's planner, with its defaults and the profile as given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path

from triskel.simulator.autoscale_command import AutoscaleOptions, AutoscaleRow, _run_one
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.command import load_policy
from triskel.simulator.metrics import SloTargets
from triskel.traces import load_trace
from triskel.traces.burst import with_bursts

MODES = ("whole-groups", "elastic-ep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", required=True)
    parser.add_argument("--rate-scale", type=float, default=3.0)
    parser.add_argument("--profile", default="deepseek-v2-lite-ep-h100")
    parser.add_argument("--ep", type=int, default=4)
    parser.add_argument("--unified", type=int, default=4, help="the smallest start")
    parser.add_argument("--burst", action="append", default=[], help="START,END,FACTOR")
    parser.add_argument("--min-ranks", default="4,8,12,16")
    parser.add_argument("--max-ranks", type=int, default=32)
    parser.add_argument("--attainment", type=float, default=0.9)
    parser.add_argument("--ttft-ms", type=float, default=2000.0)
    parser.add_argument("--tpot-ms", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    floors = [int(text) for text in args.min_ranks.split(",")]
    if any(floor < 1 or floor % args.ep for floor in floors):
        parser.error(f"--min-ranks: each a positive multiple of --ep ({args.ep}), got {floors}")
    windows = [tuple(float(x) for x in text.split(",")) for text in args.burst]
    if any(len(window) != 3 for window in windows):
        parser.error("--burst: expected START,END,FACTOR")
    trace = load_trace(args.trace, None).scaled(args.rate_scale)
    if windows:
        trace = with_bursts(trace, windows, seed=args.seed)  # type: ignore[arg-type]
    slo = SloTargets(args.ttft_ms / 1000, args.tpot_ms / 1000, args.attainment)
    print(f"trace {trace.name}: {trace.num_requests} requests over {trace.duration_s:.0f} s")

    tasks = []
    for floor in floors:
        start = -(-max(floor, args.unified) // args.ep) * args.ep
        shape = ClusterShape(num_unified=start, profile=args.profile)
        options = AutoscaleOptions(
            trace=trace,
            shape=shape,
            slo=slo,
            policies=["triskel"],
            routing=load_policy("round-robin").routing,
            start=shape,
            min_replicas=floor,
            max_replicas=args.max_ranks,
            seed=args.seed,
            ep=args.ep,
            burst_windows=tuple(sorted((s, e) for s, e, _ in windows)),
        )
        tasks += [(floor, mode, options, shape) for mode in MODES]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = [
            pool.submit(_run_one, f"triskel/{mode}", options, shape, shape)
            for _, mode, options, shape in tasks
        ]
        rows: dict[tuple[int, str], AutoscaleRow] = {
            (floor, mode): future.result().row
            for (floor, mode, _, _), future in zip(tasks, futures, strict=True)
        }

    print()
    print(
        "| min ranks | mode | SLO attainment | in the bursts | longest absorb | GPU-hours "
        "| mean ranks | other mode at equal GPU-hours | gap (points) |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    curves = {
        mode: sorted((rows[f, mode].gpu_hours, rows[f, mode].attainment) for f in floors)
        for mode in MODES
    }
    gaps = []
    for floor in floors:
        for mode in MODES:
            row = rows[floor, mode]
            other = MODES[1 - MODES.index(mode)]
            matched = interpolate(curves[other], row.gpu_hours)
            gap = None
            if matched is not None:
                elastic = row.attainment if mode == "elastic-ep" else matched
                whole = matched if mode == "elastic-ep" else row.attainment
                gap = (elastic - whole) * 100
                gaps.append(gap)
            print(
                f"| {floor} | {mode} | {row.attainment:.1%} | {_pct(row.burst_attainment)} "
                f"| {_secs(row.absorb_s)} | {row.gpu_hours:.2f} "
                f"| {row.mean_replicas.get('unified', 0.0):.1f} "
                f"| {'' if matched is None else f'{matched:.1%}'} "
                f"| {'' if gap is None else f'{gap:+.1f}'} |"
            )
    if gaps:
        print(
            f"\nelastic minus whole groups at equal GPU-hours: {min(gaps):+.1f} to "
            f"{max(gaps):+.1f} points (target: >= +10)"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "trace": trace.name,
                    "runs": [
                        {"minRanks": floor, "mode": mode, **asdict(rows[floor, mode])}
                        for floor in floors
                        for mode in MODES
                    ],
                },
                indent=1,
            )
            + "\n"
        )


def interpolate(curve: list[tuple[float, float]], x: float) -> float | None:
    """The curve's y at x, linear between its points; None outside its range."""
    for (x0, y0), (x1, y1) in pairwise(curve):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    if curve and curve[0][0] == x:
        return curve[0][1]
    return None


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} s"


if __name__ == "__main__":
    main()
