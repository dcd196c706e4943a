"""bench/compare_routers.py: which Triskel rows a run has (policies × worker apis), the
option choosing the worker apis, and the vLLM-API guard kept for the HTTP rows only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from triskel.router.backends.addresses import WorkerApi

from support.bench_scripts import BENCH, load_bench_script

bench = load_bench_script("compare_routers")

HTTP_POLICY = BENCH / "policies" / "triskel-http.yaml"
LLM_D_POLICY = BENCH / "policies" / "llm-d.yaml"


def options(*argv: str) -> Any:
    # --quick: a 20-request trace, so building the options stays cheap.
    return bench.build_options(bench.parse_args(["--quick", *argv]))


def test_by_default_triskel_runs_over_both_worker_apis_http_first() -> None:
    # A plain run (and --quick) shows the frames row beside today's HTTP one.
    assert options().triskel_worker_apis == (WorkerApi.VLLM, WorkerApi.TRISKEL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("triskel", (WorkerApi.TRISKEL,)),
        ("vllm", (WorkerApi.VLLM,)),
        # The order given is the table's; a repeated api is one row, not two.
        ("triskel,vllm", (WorkerApi.TRISKEL, WorkerApi.VLLM)),
        (" vllm , vllm,", (WorkerApi.VLLM,)),
    ],
)
def test_the_worker_apis_option_parses(text: str, expected: tuple[WorkerApi, ...]) -> None:
    assert options("--triskel-worker-apis", text).triskel_worker_apis == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grpc", "--triskel-worker-apis grpc: unknown api 'grpc'; choose from vllm,triskel"),
        ("vllm,http", "--triskel-worker-apis vllm,http: unknown api 'http'"),
        (",", "--triskel-worker-apis ',': none given; choose from vllm,triskel"),
    ],
)
def test_an_unknown_or_missing_worker_api_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        options("--triskel-worker-apis", text)
    assert str(exit_info.value).startswith(message)


def test_every_triskel_policy_runs_once_per_worker_api_its_rows_side_by_side() -> None:
    chosen = options(
        "--routers",
        "smg,triskel",
        "--triskel-policies",
        f"{HTTP_POLICY},{LLM_D_POLICY}",
    )
    rows = [
        (str(c.kind), c.policy_label, c.worker_api)
        for c in bench.contenders(bench.Shape.PD, chosen)
    ]
    assert rows == [
        # The peers reach the workers over vLLM's API only.
        ("smg", "cache_aware", WorkerApi.VLLM),
        ("smg", "round_robin", WorkerApi.VLLM),
        ("triskel", "triskel-http.yaml", WorkerApi.VLLM),
        ("triskel", "triskel-http.yaml (workers over frames)", WorkerApi.TRISKEL),
        ("triskel", "llm-d.yaml", WorkerApi.VLLM),
        ("triskel", "llm-d.yaml (workers over frames)", WorkerApi.TRISKEL),
    ]


def test_the_vllm_api_guard_holds_back_the_http_rows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Triskel whose router refuses vLLM-API workers still runs its frames rows.
    ran: list[str] = []

    async def run_contender(contender: Any, spec: Any, _options: Any) -> Any:
        ran.append(contender.policy_label)
        return bench.Row(str(spec.shape), str(contender.kind), contender.policy_label)

    monkeypatch.setattr(bench, "triskel_serves_vllm_workers", lambda: "refused")
    monkeypatch.setattr(bench, "run_contender", run_contender)
    rows = asyncio.run(bench.compare(options("--routers", "triskel", "--shape", "unified")))
    assert [(row.policy, row.error) for row in rows] == [
        ("triskel-http.yaml", "refused"),
        ("triskel-http.yaml (workers over frames)", None),
    ]
    assert ran == ["triskel-http.yaml (workers over frames)"]


def test_the_noise_floor_comes_first_on_each_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run_contender(contender: Any, spec: Any, _options: Any) -> Any:
        return bench.Row(str(spec.shape), str(contender.kind), contender.policy_label)

    async def noise_floor(spec: Any, _options: Any) -> Any:
        return bench.Row(str(spec.shape), "direct", bench.NOISE_FLOOR_LABEL)

    monkeypatch.setattr(bench, "triskel_serves_vllm_workers", lambda: None)
    monkeypatch.setattr(bench, "run_contender", run_contender)
    monkeypatch.setattr(bench, "noise_floor", noise_floor)
    argv = ("--routers", "triskel", "--triskel-worker-apis", "triskel")
    rows = asyncio.run(bench.compare(options(*argv, "--noise-floor")))
    assert [(row.shape, row.router) for row in rows] == [
        ("unified", "direct"),
        ("unified", "triskel"),
        ("pd", "direct"),
        ("pd", "triskel"),
    ]
    assert [row.router for row in asyncio.run(bench.compare(options(*argv)))] == ["triskel"] * 2


def test_the_noise_floor_probes_the_same_workers_twice() -> None:
    opts = options("--noise-floor", "--probe-rates", "50", "--probe-requests", "5")
    spec = bench.FleetSpec(bench.Shape.UNIFIED, 2, opts.time_scale)
    row = asyncio.run(bench.noise_floor(spec, opts))
    (pair,) = row.probes
    assert (row.router, row.policy) == ("direct", bench.NOISE_FLOOR_LABEL)
    assert pair.direct.num_finished == pair.routed.num_finished == 5
    added = pair.added_ms()
    assert added is not None
    # No router in between: whatever it reads is the harness's own spread, not a hop.
    assert "| direct | A/A: the direct probe again |" in bench.comparison_table([row], [50.0])
