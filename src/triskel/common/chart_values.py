"""The helm chart's values (`charts/triskel/values.yaml`) as models.

`charts/triskel/values.schema.json` is generated from `ChartValues`
(`python scripts/gen_chart_schema.py`), so `helm install` and `helm lint` refuse a bad
value with the field named, and `values.yaml` is tested to equal these defaults.
Field names are camelCase in YAML, as everywhere in Kubernetes.
"""

from __future__ import annotations

import copy
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from triskel.common.api import ApiModel

# Kubernetes' own pattern for a resource quantity ("500m", "2Gi", "1e3").
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A namespace or Service name: an RFC 1123 label.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A ConfigMap name: an RFC 1123 subdomain.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Prometheus duration ("30s", "1m").
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)] | Annotated[int, Field(ge=0)]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]
Port = Annotated[int, Field(ge=1, le=65535)]
# kopf's liveness endpoint in the operator pod (templates/operator-deployment.yaml).
OPERATOR_HEALTH_PORT = 8080


class ChartModel(ApiModel):
    """Strict (unknown keys are errors) and documented: docstrings become descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Image(ChartModel):
    repository: Annotated[str, Field(min_length=1)]
    """Image name without the tag."""
    tag: str = ""
    """Image tag; empty means the chart's appVersion."""
    pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT


class ImagePullSecret(ChartModel):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN)]
    """A Secret of type kubernetes.io/dockerconfigjson in the release namespace."""


class Resources(ChartModel):
    """Container resources, as in a Pod spec (quantities like "500m" or "1Gi")."""

    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)


class Toleration(ChartModel):
    key: str = ""
    """Taint key; empty with operator Exists tolerates every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    """Taint effect to tolerate; empty means all effects."""
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None
    """How long a NoExecute taint is tolerated before eviction (unset: forever)."""


class PodPlacement(ChartModel):
    """Where a component's pods may run."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    """A Pod spec `affinity` (nodeAffinity, podAffinity, podAntiAffinity), copied as is."""


def _not_the_health_port(port: int) -> int:
    # Two listeners on one port: the second bind fails and the operator pod crash-loops.
    if port == OPERATOR_HEALTH_PORT:
        raise ValueError(f"{port} is the operator's liveness port; pick another")
    return port


class OperatorMetrics(ChartModel):
    """The operator's Prometheus /metrics: `triskel_autoscaler_desired_replicas`, which
    KEDA or an HPA reads in the autoscaler's `recommend` mode."""

    enabled: bool = True
    """Serve /metrics (`--metrics-address`) on the pod IP, on container port `metrics`."""
    port: Annotated[
        Port,
        AfterValidator(_not_the_health_port),
        Field(json_schema_extra={"not": {"const": OPERATOR_HEALTH_PORT}}),
    ] = 9090
    """Container port of /metrics (and of the operator Service a ServiceMonitor scrapes);
    not 8080, the liveness port."""


class OperatorValues(PodPlacement):
    """The operator: one kopf process reconciling WorkerPools, ServingGraphs, RoutingPolicies."""

    watch_namespaces: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]],
        Field(json_schema_extra={"uniqueItems": True}),
    ] = Field(default_factory=list)
    """Namespaces whose WorkerPools, ServingGraphs and RoutingPolicies the operator handles
    (and the router reads), with a Role in each; empty means every namespace, with
    ClusterRoles."""
    log_level: LogLevel = LogLevel.INFO
    metrics: OperatorMetrics = OperatorMetrics()
    resources: Resources = Resources(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "512Mi"}
    )


class RouterService(ChartModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    http_port: Port = 8080
    """Service port of the OpenAI-compatible HTTP API."""
    grpc_port: Port = 50051
    """Service port of the gRPC API (triskel.v1.Router)."""


# The router container's API ports (templates/router-deployment.yaml).
ROUTER_API_PORTS = (8080, 50051)


def _not_an_api_port(port: int) -> int:
    # Two listeners on one port: the second bind fails and the router pod crash-loops.
    if port in ROUTER_API_PORTS:
        raise ValueError(f"{port} is one of the router's API ports; pick another")
    return port


class RouterMetricsValues(ChartModel):
    """The router's Prometheus /metrics, on a port of its own (`--metrics-address`): the
    API port no longer serves it, so clients never see it."""

    port: Annotated[
        Port,
        AfterValidator(_not_an_api_port),
        Field(json_schema_extra={"not": {"enum": list(ROUTER_API_PORTS)}}),
    ] = 9090
    """Container and Service port `metrics`; not 8080 or 50051, the API ports."""


class RouterOidc(ChartModel):
    """Bearer JWTs from an OIDC issuer (`--jwt-*`); all three set, or none."""

    issuer: str = ""
    """The tokens' `iss`; empty: no bearer tokens."""
    audience: str = ""
    """The `aud` tokens must carry."""
    jwks_url: Annotated[str, Field(pattern=r"^$|^https://")] = ""
    """The issuer's public keys (its discovery document's jwks_uri)."""

    @model_validator(mode="after")
    def _all_or_none(self) -> RouterOidc:
        fields = (self.issuer, self.audience, self.jwks_url)
        if any(fields) and not all(fields):
            raise ValueError("router.auth.oidc: set issuer, audience and jwksUrl together")
        return self


class RouterAuth(ChartModel):
    """Callers of the router's APIs present an API key or a token (docs/security.md);
    neither set: the APIs are open to whoever reaches them (see networkPolicy)."""

    existing_secret: Annotated[str, Field(pattern=f"^$|{DNS_SUBDOMAIN_PATTERN}")] = ""
    """A Secret of yours holding the API keys file (`triskel new-api-key` prints entries);
    mounted read-only and re-read when it changes. Empty: no API keys."""
    existing_secret_key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = "keys.yaml"
    """The key holding the file in `existingSecret`."""
    oidc: RouterOidc = RouterOidc()


class RouterValues(PodPlacement):
    """The router: the one endpoint clients call."""

    replicas: Annotated[int, Field(ge=0)] = 1
    """Router replicas; more than one should share state through `redis.enabled`."""
    processes: Annotated[int, Field(ge=0, le=256)] = 0
    """Router processes per pod, serving the same ports (`triskel router --processes`);
    0: one per core of `resources.requests.cpu`, rounded up. With `auth`, more than one
    needs `redis.enabled` (rate limits and key grants are kept there)."""
    log_level: LogLevel = LogLevel.INFO
    service: RouterService = RouterService()
    metrics: RouterMetricsValues = RouterMetricsValues()
    auth: RouterAuth = RouterAuth()
    resources: Resources = Resources(
        requests={"cpu": "500m", "memory": "512Mi"}, limits={"memory": "1Gi"}
    )


class RedisAuth(ChartModel):
    """The password Redis requires (requirepass) and routers send, from a Secret."""

    existing_secret: Annotated[str, Field(pattern=f"^$|{DNS_SUBDOMAIN_PATTERN}")] = ""
    """A Secret of yours in the release namespace; empty: the chart makes one with a random
    password, kept across upgrades."""
    existing_secret_key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = "password"
    """The key holding the password in `existingSecret`."""


class RedisValues(PodPlacement):
    """An in-cluster Redis for state shared by router replicas (a cache: no persistence)."""

    enabled: bool = False
    image: Image = Image(repository="redis", tag="7")
    auth: RedisAuth = RedisAuth()
    resources: Resources = Resources(
        requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"}
    )


class ServiceMonitorValues(ChartModel):
    """Prometheus Operator ServiceMonitors for the router's /metrics and, with
    `operator.metrics.enabled`, the operator's."""

    enabled: bool = False
    """Needs the monitoring.coreos.com/v1 CRDs (Prometheus Operator) in the cluster."""
    interval: Annotated[str, Field(pattern=DURATION_PATTERN)] = "30s"
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels, e.g. the `release` label your Prometheus selects ServiceMonitors by."""


class MetricsValues(ChartModel):
    service_monitor: ServiceMonitorValues = ServiceMonitorValues()


class NetworkPolicyValues(ChartModel):
    """NetworkPolicies for the chart's pods and, through the operator, every WorkerPool's
    pods: routers and the operator reach the workers' serving ports, workers of one model
    reach each other (KV), only routers reach Redis (docs/security.md)."""

    enabled: bool = False
    """Needs a CNI that enforces NetworkPolicies (Calico, Cilium, ...); others accept them
    and enforce nothing."""
    router_clients: list[dict[str, Any]] = Field(default_factory=list)
    """NetworkPolicy peers (podSelector, namespaceSelector, ipBlock) allowed to call the
    router's HTTP and gRPC APIs, copied as is; empty means any source."""


class CertManagerIssuerRef(ChartModel):
    """The cert-manager issuer that signs the chart's certificates."""

    name: Annotated[str, Field(pattern=f"^$|{DNS_SUBDOMAIN_PATTERN}")] = ""
    """Empty: no cert-manager (use `tls.existingSecret`)."""
    kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"
    group: str = "cert-manager.io"


class TlsCertManager(ChartModel):
    issuer_ref: CertManagerIssuerRef = CertManagerIssuerRef()
    """A CA issuer: its Secrets must carry `ca.crt`, which every pod trusts (mTLS)."""


class TlsValues(ChartModel):
    """TLS everywhere (docs/security.md, "TLS"): HTTPS and gRPC TLS on the router's APIs,
    mTLS from the router and the operator to every Triskel worker, mutual TLS between
    workers for KV. Certificates from cert-manager (`certManager.issuerRef`: a Certificate
    for the router and one for the workers) or `existingSecret` (one for all)."""

    enabled: bool = False
    existing_secret: Annotated[str, Field(pattern=f"^$|{DNS_SUBDOMAIN_PATTERN}")] = ""
    """A kubernetes.io/tls Secret of yours (tls.crt, tls.key, ca.crt) used by the router,
    the operator and every worker: its certificate names the router's Service and
    `workerServerName`, for server and client use."""
    cert_manager: TlsCertManager = TlsCertManager()
    worker_server_name: Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN)] = "triskel-worker"
    """The name in the workers' certificate (they are dialled by pod IP)."""
    extra_dns_names: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """More names for the router's certificate (an ingress host); cert-manager only."""

    @model_validator(mode="after")
    def _one_source(self) -> TlsValues:
        has_issuer = bool(self.cert_manager.issuer_ref.name)
        if self.enabled and has_issuer == bool(self.existing_secret):
            raise ValueError(
                "tls: with enabled, set one of certManager.issuerRef.name and existingSecret"
            )
        return self


class ChartValues(ChartModel):
    """Values of the `triskel` helm chart."""

    image: Image = Image(repository="ghcr.io/triskel-io/triskel")
    """The Triskel image (repository-root Dockerfile); operator and router both run it."""
    image_pull_secrets: list[ImagePullSecret] = Field(default_factory=list)
    name_override: str = ""
    """Replaces the chart name in resource names."""
    fullname_override: str = ""
    """Replaces the `<release>-<chart>` prefix of resource names."""
    operator: OperatorValues = OperatorValues()
    router: RouterValues = RouterValues()
    redis: RedisValues = RedisValues()
    metrics: MetricsValues = MetricsValues()
    network_policy: NetworkPolicyValues = NetworkPolicyValues()
    tls: TlsValues = TlsValues()


def values_json_schema() -> dict[str, Any]:
    """The JSON schema of `ChartValues` as helm reads it (draft 7, no `$ref`s).

    References are inlined and titles dropped so the file reads top-down and any
    draft-7 validator (helm 3's included) resolves it.
    """
    schema = ChartValues.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    inlined = _inline(schema, definitions)
    return {"$schema": "http://json-schema.org/draft-07/schema#", **inlined}


def values_json_schema_text() -> str:
    """`values_json_schema()` as the committed file's exact text."""
    return json.dumps(values_json_schema(), indent=2) + "\n"


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        target = copy.deepcopy(definitions[name])
        # A field's own description and default win over the referenced model's.
        target.update({k: v for k, v in node.items() if k != "$ref"})
        return _inline(target, definitions)
    inlined: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, str) and key == "title":
            continue
        if isinstance(value, str) and key == "description":
            # Docstrings wrap at 100 columns; a description is one line.
            value = " ".join(value.split())
        inlined[key] = _inline(value, definitions)
    return inlined
