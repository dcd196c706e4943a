"""The chart's router.auth: the keys Secret mounted read-only as a whole volume (so its
updates reach the router) and passed with --api-keys-file; OIDC values as --jwt-* flags."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from triskel.common.chart_values import ChartValues, values_json_schema

from support.helm import container, find, render

KEYS_DIR = "/etc/triskel/router-auth"


def router_pod(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = find(manifests, "Deployment", "triskel-router")["spec"]["template"][
        "spec"
    ]
    return pod


def test_the_keys_secret_is_mounted_read_only_and_passed() -> None:
    manifests = render(
        {"router": {"auth": {"existingSecret": "api-keys", "existingSecretKey": "k"}}}
    )
    router = container(manifests, "triskel-router")
    assert f"--api-keys-file={KEYS_DIR}/keys.yaml" in router["args"]
    [mount] = [m for m in router["volumeMounts"] if m["mountPath"] == KEYS_DIR]
    # No subPath: a subPath mount never sees the Secret's updates, so no hot reload.
    assert mount["readOnly"] is True and "subPath" not in mount
    [volume] = [v for v in router_pod(manifests)["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"] == {
        "secretName": "api-keys",
        "items": [{"key": "k", "path": "keys.yaml"}],
    }


def test_oidc_values_become_the_jwt_flags() -> None:
    oidc = {
        "issuer": "https://id.example",
        "audience": "triskel",
        "jwksUrl": "https://id.example/k",
    }
    args = container(render({"router": {"auth": {"oidc": oidc}}}), "triskel-router")["args"]
    assert "--jwt-issuer=https://id.example" in args
    assert "--jwt-audience=triskel" in args
    assert "--jwt-jwks-url=https://id.example/k" in args
    assert not [a for a in args if a.startswith("--api-keys-file")]


def test_by_default_the_router_takes_no_auth_flags() -> None:
    manifests = render()
    args = container(manifests, "triskel-router")["args"]
    assert not [a for a in args if a.startswith(("--api-keys-file", "--jwt-"))]
    assert KEYS_DIR not in [
        m["mountPath"] for m in container(manifests, "triskel-router")["volumeMounts"]
    ]


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"oidc": {"issuer": "i", "audience": "a", "jwksUrl": "http://id.example/k"}}, "jwksUrl"),
        ({"existingSecret": "Not_A_Name"}, "existingSecret"),
    ],
)
def test_model_and_schema_refuse_bad_auth_values(auth: dict[str, Any], field: str) -> None:
    values = {"router": {"auth": auth}}
    with pytest.raises(ValidationError, match=field):
        ChartValues.model_validate(values)
    errors = list(jsonschema.Draft7Validator(values_json_schema()).iter_errors(values))
    assert [error.absolute_path[-1] for error in errors] == [field]


def test_half_an_oidc_setting_is_refused() -> None:
    # JSON schema cannot say "all or none"; the model (and the router at start) can.
    with pytest.raises(ValidationError, match="set issuer, audience and jwksUrl together"):
        ChartValues.model_validate({"router": {"auth": {"oidc": {"issuer": "https://i"}}}})
