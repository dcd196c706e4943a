"""tls.enabled: cert-manager Certificates for the router and the workers (or one Secret
of the user's), the router serving HTTPS and gRPC TLS and calling workers with mTLS, the
operator mounting the workers' Secret into their pods and probing them with the
router's client certificate; no source of certificates is refused at render time."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from triskel.common.chart_values import ChartValues

from support.helm import CHART, RELEASE, container, find, render, run_helm

KUBERNETES_VERSION = "1.32.0"
TLS_DIR = "/etc/triskel/tls"
ISSUER = {"name": "triskel-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
CERT_MANAGER: dict[str, Any] = {"tls": {"enabled": True, "certManager": {"issuerRef": ISSUER}}}
EXISTING: dict[str, Any] = {"tls": {"enabled": True, "existingSecret": "my-tls"}}
CLIENT_FLAGS = [
    f"--worker-tls-cert-file={TLS_DIR}/tls.crt",
    f"--worker-tls-key-file={TLS_DIR}/tls.key",
    f"--worker-tls-ca-file={TLS_DIR}/ca.crt",
    "--worker-tls-server-name=triskel-worker",
]


def _mounted_secret(manifests: list[dict[str, Any]], deployment: str) -> str:
    pod = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    [mount] = [m for m in container(manifests, deployment)["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    # The whole Secret, not items or subPath: a renewal reaches the mounted files.
    assert set(volume["secret"]) == {"secretName"}
    name: str = volume["secret"]["secretName"]
    return name


def test_cert_manager_certificates_for_the_router_and_the_workers() -> None:
    manifests = render(CERT_MANAGER)
    router = find(manifests, "Certificate", "triskel-router")["spec"]
    assert router["secretName"] == "triskel-router-tls"
    assert router["issuerRef"] == ISSUER
    # Clients reach the router by its Service's names.
    assert "triskel-router.triskel-system.svc" in router["dnsNames"]
    workers = find(manifests, "Certificate", "triskel-worker")["spec"]
    assert workers["secretName"] == "triskel-worker-tls"
    assert workers["dnsNames"] == ["triskel-worker"]
    # Each side presents its certificate as a client too (mutual TLS).
    for spec in (router, workers):
        assert {"server auth", "client auth"} <= set(spec["usages"])


@pytest.mark.parametrize(
    ("values", "router_secret", "worker_secret"),
    [
        (CERT_MANAGER, "triskel-router-tls", "triskel-worker-tls"),
        (EXISTING, "my-tls", "my-tls"),
    ],
)
def test_the_router_and_the_operator_use_the_secrets(
    values: dict[str, Any], router_secret: str, worker_secret: str
) -> None:
    manifests = render(values)
    for deployment in ("triskel-router", "triskel-operator"):
        kubernetes_validate.validate(
            find(manifests, "Deployment", deployment), KUBERNETES_VERSION, strict=True
        )
        assert _mounted_secret(manifests, deployment) == router_secret
    router = container(manifests, "triskel-router")
    assert f"--tls-cert-file={TLS_DIR}/tls.crt" in router["args"]
    assert f"--tls-key-file={TLS_DIR}/tls.key" in router["args"]
    assert set(CLIENT_FLAGS) <= set(router["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert router[probe]["httpGet"]["scheme"] == "HTTPS"
    operator = container(manifests, "triskel-operator")
    assert f"--worker-tls-secret={worker_secret}" in operator["args"]
    assert set(CLIENT_FLAGS) <= set(operator["args"])
    ports = {p["name"]: p for p in find(manifests, "Service", "triskel-router")["spec"]["ports"]}
    assert ports["http"]["appProtocol"] == ports["grpc"]["appProtocol"] == "https"
    assert ports["metrics"]["appProtocol"] == "http"  # /metrics stays plaintext
    if values is EXISTING:
        assert not [m for m in manifests if m["kind"] == "Certificate"]


def test_without_tls_nothing_changes() -> None:
    manifests = render()
    assert not [m for m in manifests if m["kind"] == "Certificate"]
    for deployment in ("triskel-router", "triskel-operator"):
        args = container(manifests, deployment)["args"]
        assert not [a for a in args if "tls" in a]
    assert "scheme" not in container(manifests, "triskel-router")["readinessProbe"]["httpGet"]


@pytest.mark.parametrize(
    "tls",
    [
        # Nothing to serve with...
        {"enabled": True},
        # ...or two sources, of which the chart cannot tell the one meant.
        {"enabled": True, "existingSecret": "mine", "certManager": {"issuerRef": ISSUER}},
    ],
)
def test_enabled_tls_needs_exactly_one_source_of_certificates(tls: dict[str, Any]) -> None:
    result = run_helm(["template", RELEASE, str(CHART)], {"tls": tls})
    assert result.returncode != 0
    assert "tls: with enabled, set one of certManager.issuerRef.name and existingSecret" in (
        result.stderr
    )


def test_the_values_model_refuses_it_too() -> None:
    # The model values.schema.json is generated from says it too (the schema, as
    # generated, cannot say "exactly one of": the template's check does).
    with pytest.raises(ValidationError, match=r"set one of certManager\.issuerRef\.name"):
        ChartValues.model_validate({"tls": {"enabled": True}})
    assert ChartValues.model_validate(EXISTING).tls.existing_secret == "my-tls"
