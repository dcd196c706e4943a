"""The commands and flags the chart and the image run exist in the `triskel` CLI.

The image's entrypoint is `triskel`; the chart's containers pass `<command> --flags`,
and mock worker pods run `triskel worker`. Parts still being built are listed in
PENDING as strict expected failures: when one lands, its case passes, pytest reports
the unexpected pass as a failure, and the entry must be removed from PENDING.
"""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperGroup

from triskel.cli.main import app

from support.helm import container, render

# What the chart's containers run (tests/charts/test_chart_render.py pins the exact args).
USED = {
    "operator": [
        "--namespace",
        "--router-namespace",
        "--worker-image",
        "--liveness",
        "--metrics-address",
        "--network-policy-router-labels",
        "--network-policy-operator-labels",
        "--worker-tls-secret",
        "--worker-tls-cert-file",
        "--worker-tls-key-file",
        "--worker-tls-ca-file",
        "--worker-tls-server-name",
        "--log-level",
    ],
    "router": [
        "--cluster-config",
        "--http-address",
        "--grpc-address",
        "--processes",
        "--metrics-address",
        "--redis-url",
        "--redis-password-file",
        "--api-keys-file",
        "--jwt-issuer",
        "--jwt-audience",
        "--jwt-jwks-url",
        "--tls-cert-file",
        "--tls-key-file",
        "--worker-tls-cert-file",
        "--worker-tls-key-file",
        "--worker-tls-ca-file",
        "--worker-tls-server-name",
        "--log-level",
    ],
    # Mock worker pods (operator/builders/engines/mock.py) override the entrypoint.
    "worker": [],
}
# (command, flag or None for the command itself) → who is building it.
PENDING: dict[tuple[str, str | None], str] = {}
CASES = [(command, None) for command in USED] + [
    (command, flag) for command, flags in USED.items() for flag in flags
]


def _cli() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _case(command: str, flag: str | None) -> object:
    reason = PENDING.get((command, flag))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(command, flag, marks=marks, id=f"{command} {flag or ''}".strip())


@pytest.mark.parametrize(("command", "flag"), [_case(c, f) for c, f in CASES])
def test_cli_has_what_the_chart_runs(command: str, flag: str | None) -> None:
    commands = _cli().commands
    assert command in commands, f"`triskel {command}` missing; has {sorted(commands)}"
    if flag is not None:
        options = {name for param in commands[command].params for name in param.opts}
        assert flag in options, f"`triskel {command}` has no {flag}; has {sorted(options)}"


def test_used_lists_every_flag_the_chart_passes() -> None:
    values = {
        "redis": {"enabled": True},
        "operator": {"watchNamespaces": ["team-a"]},
        "networkPolicy": {"enabled": True},
        "tls": {"enabled": True, "existingSecret": "tls"},
        "router": {
            "auth": {
                "existingSecret": "api-keys",
                "oidc": {
                    "issuer": "https://issuer.test",
                    "audience": "triskel",
                    "jwksUrl": "https://issuer.test/jwks",
                },
            }
        },
    }
    passed: dict[str, set[str]] = {}
    for manifests in (render(), render(values)):
        for deployment in ("triskel-operator", "triskel-router"):
            command, *args = container(manifests, deployment)["args"]
            passed.setdefault(command, set()).update(arg.split("=")[0] for arg in args)
    assert passed == {command: set(USED[command]) for command in ("operator", "router")}
