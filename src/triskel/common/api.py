"""API models shared by every component: the `WorkerPool` spec.

These pydantic models are the single source of truth for pool configuration:
`triskel up` reads them from YAML today; the operator's CRD schemas will be
generated from them. Field names are camelCase on the wire (Kubernetes style)
and snake_case in Python.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


def split_address(address: str) -> tuple[str, int]:
    """("host", port) from "host:port"; ValueError, naming `address`, when it is not
    host:port with a port in 0..65535.

    The port is what follows the last colon, and the host is kept as written, brackets
    included ("[::1]:8000" gives ("[::1]", 8000)), so f"{host}:{port}" is an address
    again. A socket wants the bare IPv6 host: strip the brackets there.
    """
    host, sep, port = address.rpartition(":")
    # isascii: int() also reads other scripts' digits, and isdigit() passes "²".
    if not (sep and host and port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"expected host:port with a port in 0..65535, got {address!r}")
    return host, int(port)


def _check_address(value: str) -> str:
    split_address(value)
    return value


Address = Annotated[str, AfterValidator(_check_address)]
"""A "host:port" listen or connect address (port 0: pick a free one)."""


class ApiModel(BaseModel):
    """Strict base: unknown fields are errors, never silently dropped.

    Attribute docstrings become field descriptions (`kubectl explain wp.spec.replicas`).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class Role(StrEnum):
    ENCODE = "encode"
    PREFILL = "prefill"
    DECODE = "decode"
    UNIFIED = "unified"


class EngineType(StrEnum):
    MOCK = "mock"
    VLLM = "vllm"
    SGLANG = "sglang"


class ConnectorType(StrEnum):
    TCP = "tcp"
    MOONCAKE = "mooncake"
    NCCL = "nccl"
    # vLLM's NIXL connector: real engines only (the mock moves bytes with the others).
    NIXL = "nixl"


class EngineSpec(ApiModel):
    """Which engine the pool runs, and how to start it."""

    type: EngineType = EngineType.MOCK
    """mock (CPU, modelled latency), vllm or sglang."""
    image: str | None = None
    """Container image; the operator's default for its engine when empty."""
    args: tuple[str, ...] = ()
    """Extra engine arguments, appended to the ones Triskel derives."""


class ReplicasSpec(ApiModel):
    """Bounds for the pool's size; `desired` is what runs now (defaults to `min`).

    `desired` is the WorkerPool's scale subresource (`kubectl scale`, HPA, KEDA and
    the SLO planner write it); the CRD refuses a value outside [min, max].
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.min <= self.max",
                    "message": "replicas.min must be <= replicas.max",
                    "fieldPath": ".min",
                },
                {
                    "rule": "!has(self.desired) || (self.desired >= self.min && "
                    "self.desired <= self.max)",
                    "message": "replicas.desired must be within [replicas.min, replicas.max]",
                    "fieldPath": ".desired",
                },
            ]
        }
    )

    min: Annotated[int, Field(ge=0)] = 1
    """Fewest replicas; what runs while `desired` is unset."""
    max: Annotated[int, Field(ge=1)] = 1
    """Most replicas any scaler may ask for."""
    desired: Annotated[int, Field(ge=0)] | None = None
    """Replicas to run now, within [min, max] (the scale subresource's spec.replicas)."""

    @model_validator(mode="after")
    def _check_bounds(self) -> ReplicasSpec:
        if self.min > self.max:
            raise ValueError(f"replicas.max ({self.max}) < replicas.min ({self.min})")
        if self.desired is not None and not self.min <= self.desired <= self.max:
            raise ValueError(
                f"replicas.desired ({self.desired}) outside [min {self.min}, max {self.max}]"
            )
        return self

    @property
    def count(self) -> int:
        return self.min if self.desired is None else self.desired


class ResourcesSpec(ApiModel):
    """Per-replica resources (used by the operator; the mock ignores GPUs)."""

    gpus: Annotated[int, Field(ge=0)] = 0
    """GPUs per replica (nvidia.com/gpu)."""
    cpu: str | None = None
    """CPU request per replica, as a Kubernetes quantity ("2", "500m")."""
    memory: str | None = None
    """Memory request per replica, as a Kubernetes quantity ("16Gi")."""


class ParallelismSpec(ApiModel):
    """How one replica splits the model over its GPUs."""

    tp: Annotated[int, Field(ge=1)] = 1
    """Tensor-parallel ranks."""
    pp: Annotated[int, Field(ge=1)] = 1
    """Pipeline-parallel stages."""
    dp: Annotated[int, Field(ge=1)] = 1
    """Data-parallel ranks."""
    ep: Annotated[int, Field(ge=1)] = 1
    """Expert-parallel ranks of one replica (an EP group); > 1 needs a `moe:` profile."""


class KvConnectorSpec(ApiModel):
    """How KV bytes move between this pool's workers and their peers."""

    type: ConnectorType = ConnectorType.TCP
    """tcp, mooncake, nccl or nixl (nixl needs a real engine)."""
    params: dict[str, str] = Field(default_factory=dict)
    """Transport settings, parsed (and checked) by the connector itself."""


class Capability(StrEnum):
    # RDMA registers (pins) KV memory; a runtime's memlock limit may be too low for it.
    IPC_LOCK = "IPC_LOCK"


class WorkerSecuritySpec(ApiModel):
    """Who the engine's process runs as (docs/security.md, "Worker pods"). The defaults
    suit every engine Triskel builds; change them only for what needs it."""

    run_as_user: Annotated[int, Field(ge=0)] = 10001
    """uid and gid of the engine (the Triskel image's user). 0 runs it as root: only for
    `addCapabilities`, which Kubernetes grants to root processes alone."""
    add_capabilities: tuple[Capability, ...] = ()
    """Capabilities added back after dropping all: IPC_LOCK (RDMA memory registration)."""


class ProfileSpec(ApiModel):
    """The mock engine's latency profile and how to size it for a small machine."""

    name: str = "llama-3.1-8b-h100"
    """A latency profile shipped with Triskel (model × GPU)."""
    kv_bytes_scale: Annotated[float, Field(gt=0, le=1)] = 1 / 256
    """KV bytes actually moved = the model's real KV bytes × this factor."""
    kv_capacity_tokens: Annotated[int, Field(ge=1)] | None = None
    """Overrides the profile's KV capacity (tokens), e.g. to force preemption."""
    time_scale: Annotated[float, Field(ge=0)] = 1.0
    """Wall-clock seconds per modelled second: 0.1 runs the mock 10× faster."""
    host_kv_capacity_tokens: Annotated[int, Field(ge=0)] = 0
    """A host-memory KV tier of this many tokens (0: none): blocks evicted from GPU
    memory go there and load back over the profile's host link when that beats
    recomputing them (as vLLM's CPU offloading or LMCache). Not with parallelism.ep > 1."""


class WorkerPoolSpec(ApiModel):
    """A pool of identical workers serving one model in one role."""

    role: Role
    """The stage these workers serve: encode, prefill, decode or unified (all of them)."""
    model: Annotated[str, Field(min_length=1)]
    """The model name clients ask for; a ServingGraph groups pools by it."""
    engine: EngineSpec = Field(default_factory=EngineSpec)
    replicas: ReplicasSpec = Field(default_factory=ReplicasSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    kv_connector: KvConnectorSpec = Field(default_factory=KvConnectorSpec)
    profile: ProfileSpec = Field(default_factory=ProfileSpec)
    """The mock engine's latency model (real engines ignore it)."""
    security: WorkerSecuritySpec = Field(default_factory=WorkerSecuritySpec)
    """The pods' user and capabilities (every pod is non-root, with no capabilities,
    unless this says otherwise)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.kvConnector) || !has(self.kvConnector.type) || "
                    "self.kvConnector.type != 'nixl' || "
                    "(has(self.engine) && has(self.engine.type) && self.engine.type != 'mock')",
                    "message": "kvConnector.type nixl needs engine.type vllm or sglang",
                    "fieldPath": ".kvConnector.type",
                },
                {
                    "rule": "!has(self.profile) || !has(self.profile.hostKvCapacityTokens) || "
                    "self.profile.hostKvCapacityTokens == 0 || !has(self.parallelism) || "
                    "!has(self.parallelism.ep) || self.parallelism.ep == 1",
                    "message": "profile.hostKvCapacityTokens needs parallelism.ep 1",
                    "fieldPath": ".profile.hostKvCapacityTokens",
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _check_connector(self) -> WorkerPoolSpec:
        if self.kv_connector.type is ConnectorType.NIXL and self.engine.type is EngineType.MOCK:
            raise ValueError(
                "kvConnector.type: nixl needs engine.type vllm or sglang "
                "(mock workers use tcp, mooncake or nccl)"
            )
        if self.profile.host_kv_capacity_tokens and self.parallelism.ep > 1:
            # An elastic EP group resizes its GPU cache as ranks come and go; its host
            # tier would have to follow, which the mock engine does not model.
            raise ValueError(
                f"profile.hostKvCapacityTokens: needs parallelism.ep 1, got {self.parallelism.ep}"
            )
        return self
