"""`helm lint` passes on the chart, and bad values are refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from support.helm import CHART, run_helm


@pytest.mark.parametrize("strict", [False, True])
def test_lint_is_clean(strict: bool) -> None:
    result = run_helm(["lint", str(CHART), *(["--strict"] if strict else [])])
    assert result.returncode == 0, result.stdout + result.stderr
    # INFO lines (e.g. "icon is recommended") are fine; warnings and errors are not.
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_lint_checks_the_namespaced_and_optional_parts_too() -> None:
    values = {
        "operator": {"watchNamespaces": ["team-a"]},
        "redis": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "networkPolicy": {"enabled": True},
    }
    result = run_helm(["lint", "--strict", str(CHART)], values)
    assert result.returncode == 0, result.stdout + result.stderr


# (values, what helm's message must contain: the field's path)
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"router": {"replicas": -1}}, "router.replicas: Must be greater than or equal to 0"),
    ({"router": {"replica": 2}}, "router: Additional property replica is not allowed"),
    ({"tag": "latest"}, "(root): Additional property tag is not allowed"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    ({"redis": {"auth": {"existingSecret": "Not_A_Name"}}}, "redis.auth.existingSecret"),
    # The API's port: two listeners on one port would crash-loop the router.
    ({"router": {"metrics": {"port": 8080}}}, "router.metrics.port"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "operator.watchNamespaces.0"),
    ({"operator": {"watchNamespaces": ["a", "a"]}}, "operator.watchNamespaces"),
    ({"redis": {"enabled": "yes"}}, "redis.enabled: Invalid type. Expected: boolean"),
    ({"router": {"resources": {"requests": {"cpu": "lots"}}}}, "router.resources.requests.cpu"),
    ({"router": {"resources": {"requests": {"gpu": 1}}}}, "router.resources.requests"),
    ({"router": {"service": {"grpcPort": 70000}}}, "router.service.grpcPort"),
    ({"router": {"tolerations": [{"effect": "Never"}]}}, "router.tolerations.0.effect"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "metrics.serviceMonitor.interval"),
    ({"operator": {"metrics": {"port": 8080}}}, "operator.metrics.port: Must not validate"),
    ({"operator": {"metrics": {"enabled": "yes"}}}, "operator.metrics.enabled: Invalid type"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
@pytest.mark.parametrize("command", ["template", "lint"])
def test_bad_values_fail_naming_the_field(
    command: str, values: dict[str, Any], message: str
) -> None:
    args = ["template", "triskel", str(CHART)] if command == "template" else ["lint", str(CHART)]
    result = run_helm(args, values)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr, result.stdout + result.stderr
