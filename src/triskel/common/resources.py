"""Triskel's custom resources: `WorkerPool`, `ServingGraph`, `RoutingPolicy`.

Group `triskel.io`, version `v1alpha1`. The spec and status models here are the
single source of truth: the CRDs in `manifests/crds/` are generated from them
(`triskel crds`), and the operator and router read objects through them.

    ServingGraph "chat" ── model: llama-3.1-8b, SLOs, disaggregation
        ├── pools: [prefill, decode]  → WorkerPool "prefill" (role prefill), "decode" ...
        └── routingPolicy: dualmap    → RoutingPolicy "dualmap" (scheduling profiles)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator

from triskel.common.api import ApiModel, WorkerPoolSpec
from triskel.common.routing_api import (
    AdmissionSpec,
    DisaggregationSpec,
    PrefillHoldSpec,
    RoutingConfig,
    TimeoutsSpec,
)
from triskel.common.semantic_api import CacheSpec, SemanticSpec
from triskel.planner.autoscalers import AutoscalerName

API_GROUP = "triskel.io"
API_VERSION = "v1alpha1"
# A pool name becomes a Service and Deployment name: a DNS-1035 label, with room for
# the suffixes the operator adds.
POOL_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
POOL_NAME_MAX_LENGTH = 50
# The router's /metrics: plain http(s), a host, no spaces (the operator fetches it as is).
METRICS_URL_PATTERN = r"^https?://[^\s/?#@]+(/\S*)?$"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition (`Ready`, `Progressing`, `Degraded`)."""

    type: Annotated[str, Field(min_length=1)]
    status: ConditionStatus
    reason: Annotated[str, Field(min_length=1)]
    """One CamelCase word saying why (`AllReplicasReady`, `InvalidSpec`)."""
    message: str = ""
    last_transition_time: str | None = None
    """RFC 3339, when `status` last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None


# One condition per type, as with metav1.Condition: server-side apply merges by `type`.
Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]


class AutoscalingDecision(ApiModel):
    """The last decision of the graph's autoscaler about this pool, kept or not."""

    graph: Annotated[str, Field(min_length=1)]
    """The ServingGraph whose autoscaler decided."""
    policy: AutoscalerName
    """The policy that decided (the graph's spec.autoscaling.policy)."""
    current_replicas: Annotated[int, Field(ge=0)]
    """Replicas asked for when it decided (spec.replicas.desired)."""
    desired_replicas: Annotated[int, Field(ge=0)]
    """Replicas it asked for; equal to currentReplicas when it kept the count."""
    reason: str
    """The decision in words (`scale up: 3 needed for 4.20 req/s`)."""
    decided_at: str
    """RFC 3339."""
    numbers: dict[str, str] = Field(default_factory=dict)
    """The figures behind the decision (observed and predicted rates, predicted TTFT /
    TPOT, utilisation...), formatted: some are words, some infinite."""


class EpStepRecord(ApiModel):
    """One change of an elastic EP pool's EP size, as its workers reported it."""

    from_: Annotated[int, Field(ge=1, alias="from")]
    """EP ranks per replica before the step."""
    to: Annotated[int, Field(ge=1)]
    """EP ranks per replica after it."""
    seconds: Annotated[float, Field(ge=0)]
    """Wall-clock seconds the step took, as the operator timed the call."""
    bytes_moved: Annotated[int, Field(ge=0)] | None = None
    """Expert bytes moved per replica; None when the engine does not say (vLLM)."""
    experts_moved: Annotated[int, Field(ge=0)] | None = None
    """Experts moved per replica; None when the engine does not say (vLLM)."""
    finished_at: str
    """RFC 3339."""


class ElasticEpStatus(ApiModel):
    """The EP size of a pool with parallelism.ep > 1, which its graph's autoscaler
    changes in EP ranks rather than replicas."""

    size: Annotated[int, Field(ge=1)]
    """EP ranks per replica the pool serves at: the last step's target once any pod took
    it (spec.parallelism.ep until then). Pods at another size are stepped to it."""
    last_step: EpStepRecord | None = None
    pods_at_size: Annotated[int, Field(ge=0)] | None = None
    """Ready pods known to serve at `size` when last checked."""
    lagging: list[str] = Field(default_factory=list)
    """Pods known not to serve at `size` (a step failed on them): the graph's autoscaler
    steps them again at its next interval."""
    size_unknown: list[str] = Field(default_factory=list)
    """Ready pods whose EP size could not be read (vLLM exports none), left as they are."""


class WorkerPoolStatus(ApiModel):
    """What the operator observed of the pool's workload."""

    replicas: Annotated[int, Field(ge=0)] = 0
    """Replicas the Deployment runs now (the scale subresource's status.replicas)."""
    ready_replicas: Annotated[int, Field(ge=0)] = 0
    """How many of them are ready."""
    desired_replicas: Annotated[int, Field(ge=0)] = 0
    """What the pool is being sized to: spec.replicas.desired, else spec.replicas.min."""
    selector: str | None = None
    """Label selector of the pool's pods, as a string (the scale subresource needs it)."""
    endpoints: list[str] = Field(default_factory=list)
    """gRPC addresses (host:port) of ready workers, for routers that watch pools."""
    conditions: Conditions = Field(default_factory=list)
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The spec generation this status describes."""
    last_scale_time: str | None = None
    """RFC 3339, when the operator last changed the replica count."""
    autoscaling: AutoscalingDecision | None = None
    """The last autoscaling decision, when a ServingGraph with spec.autoscaling names the
    pool."""
    elastic_ep: ElasticEpStatus | None = None
    """The EP size and its last change, once the autoscaler changed it."""


class GraphSlo(ApiModel):
    """The graph's latency targets and the share of requests that must meet both."""

    ttft_ms: Annotated[float, Field(gt=0)] = 2000.0
    """Time to first token, milliseconds."""
    tpot_ms: Annotated[float, Field(gt=0)] = 100.0
    """Time per output token after the first, milliseconds."""
    attainment: Annotated[float, Field(gt=0, le=1)] = 0.9
    """Share of requests that must meet both targets."""


class AutoscalingMode(StrEnum):
    SCALE = "scale"
    RECOMMEND = "recommend"


class AutoscalingSpec(ApiModel):
    """Scale the graph's pools from the router's metrics. Each pool keeps its own
    spec.replicas.min / max as bounds; the operator writes spec.replicas.desired through
    the scale subresource."""

    policy: AutoscalerName = "triskel"
    """triskel (the SLO planner), or a comparison law: hpa-queue, aibrix-kpa, dynamo
    (one prefill and one decode pool only), llm-d."""
    mode: AutoscalingMode = AutoscalingMode.SCALE
    """scale: the operator writes each pool's replicas; recommend: it only records and
    publishes them (status, triskel_autoscaler_desired_replicas), for KEDA or an HPA to
    act on."""
    metrics_url: Annotated[str, Field(pattern=METRICS_URL_PATTERN, max_length=2048)]
    """The router's Prometheus endpoint, e.g. http://triskel-router.triskel:9090/metrics
    (the chart's router Service, port `metrics`)."""
    interval_s: Annotated[float, Field(ge=1, le=3600)] | None = None
    """Seconds between two decisions; the policy's own interval when unset (triskel and
    the HPA-based laws 15, aibrix-kpa 10, dynamo 180)."""
    scale_down_window_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    """triskel: fewer replicas must be needed this long before a scale-down; the pool's
    start-up time when unset."""
    scale_down_cooldown_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    """triskel: seconds after a pool last changed before it may shrink; its start-up
    time when unset."""
    gpu_budget: Annotated[int, Field(ge=1)] | None = None
    """GPUs for the whole graph (triskel, dynamo); no budget when unset."""


class ServingGraphSpec(ApiModel):
    """The pools that serve one model, with its SLOs and disaggregation policy."""

    model: Annotated[str, Field(min_length=1)]
    """The model name clients send (`"model"` in OpenAI requests)."""
    pools: Annotated[
        list[Annotated[str, Field(pattern=POOL_NAME_PATTERN, max_length=POOL_NAME_MAX_LENGTH)]],
        Field(min_length=1, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ]
    """WorkerPool names in the graph's namespace; their roles decide each stage."""
    slo: GraphSlo = Field(default_factory=GraphSlo)
    disaggregation: DisaggregationSpec = Field(default_factory=DisaggregationSpec)
    routing_policy: (
        Annotated[str, Field(pattern=POOL_NAME_PATTERN, max_length=POOL_NAME_MAX_LENGTH)] | None
    ) = None
    """A RoutingPolicy in the same namespace; without one, Triskel's shipped default routes
    (docs/routing.md)."""
    autoscaling: AutoscalingSpec | None = None
    """Scale the pools from the router's metrics; fixed sizes when unset."""

    @field_validator("pools")
    @classmethod
    def _unique_pools(cls, pools: list[str]) -> list[str]:
        repeated = sorted({p for p in pools if pools.count(p) > 1})
        if repeated:
            raise ValueError(f"pools named twice: {', '.join(repeated)}")
        return pools


class ServingGraphStatus(ApiModel):
    ready_pools: Annotated[int, Field(ge=0)] = 0
    """Pools of the graph that exist and have every desired replica ready."""
    conditions: Conditions = Field(default_factory=list)
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The spec generation this status describes."""


class RoutingPolicySpec(RoutingConfig):
    """Scheduling plugins and profiles (llm-d's shape), the router's admission queue,
    and semantic routing with its cache (docs/semantic.md)."""

    admission: AdmissionSpec = Field(default_factory=AdmissionSpec)
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    """Tries per stage when a worker fails before the request's first token there."""
    migration_limit: Annotated[int, Field(ge=0, le=10)] = 3
    """Times one answer may continue on another decode worker after its worker failed
    mid-answer (request migration); 0: the answer ends with an error there."""
    timeouts: TimeoutsSpec = Field(default_factory=TimeoutsSpec)
    """Bounds on calls to workers, and how long a silent worker keeps its calls."""
    prefill_hold: PrefillHoldSpec = Field(default_factory=PrefillHoldSpec)
    """Prefills held for busy workers and moved to their second candidate on hotspots."""
    semantic: SemanticSpec | None = None
    """Signals and decisions for requests naming `semantic.alias` (`model: auto`): which
    model answers and how the request is changed."""
    cache: CacheSpec | None = None
    """The semantic cache for requests the `semantic` section routed, per category."""


class RoutingPolicyStatus(ApiModel):
    conditions: Conditions = Field(default_factory=list)
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The spec generation this status describes."""


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    name: str
    type: str  # string | integer | number | boolean | date
    json_path: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """Everything the CRD generator needs to know about one kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    description: str
    printer_columns: tuple[PrinterColumn, ...]
    # CEL rules on the whole object (e.g. on metadata.name).
    root_rules: tuple[dict[str, str], ...] = ()
    # The scale subresource: spec / status replica paths and the label selector path.
    scale: dict[str, str] | None = None
    categories: tuple[str, ...] = field(default=("triskel",))

    @property
    def api_version(self) -> str:
        return f"{API_GROUP}/{API_VERSION}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{API_GROUP}"


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")
_NAME_CHECK = (
    f"self.metadata.name.matches('{POOL_NAME_PATTERN}') && "
    f"size(self.metadata.name) <= {POOL_NAME_MAX_LENGTH}"
)
_NAME_RULE = {
    "rule": _NAME_CHECK,
    "message": f"metadata.name must be a DNS-1035 label of at most {POOL_NAME_MAX_LENGTH} "
    "characters (it names the pool's Deployment and Service)",
}
# ServingGraph.spec.routingPolicy only accepts such names, so any other could never be used.
_POLICY_NAME_RULE = {
    "rule": _NAME_CHECK,
    "message": f"metadata.name must be a DNS-1035 label of at most {POOL_NAME_MAX_LENGTH} "
    "characters (ServingGraph.spec.routingPolicy refers to it)",
}

WORKER_POOL = ResourceKind(
    kind="WorkerPool",
    plural="workerpools",
    singular="workerpool",
    short_names=("wp",),
    spec_model=WorkerPoolSpec,
    status_model=WorkerPoolStatus,
    description="A pool of identical workers serving one model in one role.",
    printer_columns=(
        PrinterColumn("Role", "string", ".spec.role"),
        PrinterColumn("Model", "string", ".spec.model"),
        PrinterColumn("Ready", "integer", ".status.readyReplicas"),
        PrinterColumn("Desired", "integer", ".status.desiredReplicas"),
        _AGE,
    ),
    root_rules=(_NAME_RULE,),
    scale={
        "specReplicasPath": ".spec.replicas.desired",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
)

SERVING_GRAPH = ResourceKind(
    kind="ServingGraph",
    plural="servinggraphs",
    singular="servinggraph",
    short_names=("sg",),
    spec_model=ServingGraphSpec,
    status_model=ServingGraphStatus,
    description="The worker pools that serve one model, with its SLOs.",
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.model"),
        PrinterColumn("Pools", "integer", ".status.readyPools", "ready pools"),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        _AGE,
    ),
)

ROUTING_POLICY = ResourceKind(
    kind="RoutingPolicy",
    plural="routingpolicies",
    singular="routingpolicy",
    short_names=("rp",),
    spec_model=RoutingPolicySpec,
    status_model=RoutingPolicyStatus,
    description="How the router picks workers: scheduling plugins, profiles, admission.",
    printer_columns=(
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        _AGE,
    ),
    root_rules=(_POLICY_NAME_RULE,),
)

RESOURCE_KINDS: tuple[ResourceKind, ...] = (WORKER_POOL, SERVING_GRAPH, ROUTING_POLICY)


def kind_named(kind: str) -> ResourceKind:
    """The kind called `kind` (KeyError naming the known ones otherwise)."""
    for resource in RESOURCE_KINDS:
        if resource.kind == kind:
            return resource
    known = ", ".join(r.kind for r in RESOURCE_KINDS)
    raise KeyError(f"unknown kind {kind!r}; Triskel defines {known}")


def parse_spec(kind: ResourceKind, body: dict[str, Any]) -> ApiModel:
    """The object's spec as its model (pydantic ValidationError names the field)."""
    return kind.spec_model.model_validate(body.get("spec") or {})
