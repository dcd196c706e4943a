"""The router pod runs one process per core of its CPU request (`--processes`), or
`router.processes`; with auth and no Redis, more than one is refused at render."""

from __future__ import annotations

from typing import Any

import pytest

from support.helm import CHART, RELEASE, container, render, run_helm

ROUTER = "triskel-router"
KEYS = {"auth": {"existingSecret": "router-keys"}}


def processes_arg(values: dict[str, Any]) -> str:
    args: list[str] = container(render(values), ROUTER)["args"]
    (arg,) = [a for a in args if a.startswith("--processes=")]
    return arg


@pytest.mark.parametrize(
    ("router", "expected"),
    [
        ({}, "--processes=1"),  # the default request, 500m
        ({"resources": {"requests": {"cpu": "1500m"}}}, "--processes=2"),
        ({"resources": {"requests": {"cpu": "2"}}}, "--processes=2"),
        ({"resources": {"requests": {"cpu": 4}}}, "--processes=4"),
        ({"resources": {"requests": {"cpu": "100m"}}}, "--processes=1"),
        ({"processes": 3}, "--processes=3"),
        ({"processes": 1, "resources": {"requests": {"cpu": "8"}}}, "--processes=1"),
    ],
)
def test_processes_follow_the_cpu_request(router: dict[str, Any], expected: str) -> None:
    assert processes_arg({"router": router}) == expected


def test_auth_with_several_processes_needs_redis() -> None:
    values = {"router": {**KEYS, "processes": 2}}
    result = run_helm(["template", RELEASE, str(CHART)], values)
    assert result.returncode != 0
    assert "router: 2 processes with router.auth need redis.enabled" in result.stderr
    # With Redis, or one process, it renders.
    assert processes_arg({**values, "redis": {"enabled": True}}) == "--processes=2"
    assert processes_arg({"router": {**KEYS, "processes": 1}}) == "--processes=1"
