"""The `triskel up` file: a router and pools of local worker processes.

Pool entries mirror the `WorkerPool` custom resource's spec (plus a `name`), so
a file that runs locally reads like the manifests that run on a cluster.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from triskel.cli.autoscale_graphs import AutoscaleConfigError, graph_plans
from triskel.common.api import Address, ApiModel, WorkerPoolSpec
from triskel.common.routing_api import RoutingSettings
from triskel.common.validation_errors import field_path, issue_message
from triskel.planner.autoscalers import AutoscalerName
from triskel.router.auth.config import AuthConfig
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.setup import EmbedderCache, load_semantic

DEFAULT_CONFIG_NAME = "default_up.yaml"


class UpConfigError(ValueError):
    """The file is unusable; the message names the file, the field and the value."""


class RouterSettings(ApiModel):
    http: Address = "127.0.0.1:8080"
    grpc: Address = "127.0.0.1:50051"
    # Share load, membership and prefix history with other router replicas.
    redis_url: str | None = None
    # Require API keys / JWTs as `triskel router` does (docs/security.md); absent: open,
    # as a laptop deployment on loopback usually is, and `up` says so at start.
    auth: AuthConfig | None = None
    # Router processes on the same ports (`triskel router --processes`); with more than
    # one, /metrics moves to a port of its own, where the first process sums them all.
    processes: Annotated[int, Field(ge=1, le=256)] = 1

    @model_validator(mode="after")
    def _processes_share_auth_through_redis(self) -> RouterSettings:
        if self.processes > 1 and self.auth is not None and self.redis_url is None:
            raise ValueError(
                "processes: more than one with auth needs redisUrl (each process would "
                "otherwise keep its own rate-limit buckets and key grants)"
            )
        return self


class PoolEntry(WorkerPoolSpec):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)]


class AutoscaleSettings(ApiModel):
    """Scale the pools from the router's metrics while `up` runs (docs/autoscaling.md).
    Each pool's replicas.min / max bound it; encode pools keep their size."""

    policy: AutoscalerName = "triskel"
    """triskel (the SLO planner), or a comparison law: hpa-queue, aibrix-kpa, dynamo
    (one prefill and one decode pool per model), llm-d."""
    interval_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    """Seconds between two decisions; the policy's own interval when unset (triskel and
    the HPA-based laws 15, aibrix-kpa 10, dynamo 180)."""
    ttft_ms: Annotated[float, Field(gt=0)] = 2000.0
    """The TTFT SLO the pools are sized for, milliseconds."""
    tpot_ms: Annotated[float, Field(gt=0)] = 100.0
    """The TPOT SLO the pools are sized for, milliseconds."""
    scale_down_window_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    """triskel: fewer replicas must be needed this long before a scale-down; the pool
    profile's start-up time when unset."""
    scale_down_cooldown_s: Annotated[float, Field(ge=0, le=86400)] | None = None
    """triskel: seconds after a pool last changed before it may shrink; the pool
    profile's start-up time when unset."""
    role_switch_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    """triskel: seconds a worker takes to change role between a model's prefill and
    decode pools once drained; a growing pool then takes spare workers of the other
    instead of starting new ones, when that is quicker. Unset: never switch."""

    @model_validator(mode="after")
    def _switching_is_the_planners(self) -> AutoscaleSettings:
        if self.role_switch_s is not None and self.policy != "triskel":
            raise ValueError(
                f"roleSwitchS: only the triskel policy switches roles, not {self.policy}"
            )
        return self


class UpConfig(ApiModel):
    router: RouterSettings = Field(default_factory=RouterSettings)
    # Scheduling profiles, disaggregation policy, SLOs (round-robin when absent).
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    pools: Annotated[list[PoolEntry], Field(min_length=1)]
    # Grow and shrink the pools while serving; fixed sizes when absent.
    autoscale: AutoscaleSettings | None = None

    @field_validator("pools")
    @classmethod
    def _unique_names(cls, pools: list[PoolEntry]) -> list[PoolEntry]:
        seen: set[str] = set()
        for pool in pools:
            if pool.name in seen:
                raise ValueError(f"pool name {pool.name!r} is used twice")
            seen.add(pool.name)
        return pools


def load_up_config(path: Path | None) -> tuple[UpConfig, str]:
    """The config from `path`, or the built-in default; also returns where it came from."""
    if path is None:
        text = resources.files("triskel.cli").joinpath(DEFAULT_CONFIG_NAME).read_text()
        return parse_up_config(text, f"<built-in {DEFAULT_CONFIG_NAME}>"), "built-in defaults"
    try:
        text = path.read_text()
    except OSError as error:
        raise UpConfigError(f"{path}: cannot read: {error.strerror}") from None
    return parse_up_config(text, str(path)), str(path)


def with_router_addresses(config: UpConfig, http: str | None, grpc: str | None) -> UpConfig:
    """`config` with the router's addresses replaced where given (`up --http/--grpc`)."""
    changes = {name: value for name, value in (("http", http), ("grpc", grpc)) if value}
    if not changes:
        return config
    try:
        router = RouterSettings.model_validate(config.router.model_dump(by_alias=True) | changes)
    except ValidationError as error:
        issue = error.errors()[0]
        raise UpConfigError(f"--{issue['loc'][0]}: {issue_message(issue)}") from None
    return config.model_copy(update={"router": router})


def parse_up_config(text: str, source: str, embedders: EmbedderCache | None = None) -> UpConfig:
    embedders = embedders or EmbedderCache()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UpConfigError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise UpConfigError(f"{source}: expected a mapping with `pools`, got {_kind(data)}")
    try:
        config = UpConfig.model_validate(data)
    except ValidationError as error:
        raise UpConfigError(_describe(source, error, data)) from None
    try:
        # Build the plugins once now, so a bad parameter stops `up` before any process starts.
        build_scheduler(config.routing.scheduling(), default_registry(), PluginContext())
    except PluginConfigError as error:
        raise UpConfigError(f"{source}: invalid configuration\n  routing: {error}") from None
    if config.autoscale is not None:
        try:
            graph_plans(config.autoscale, config.pools)
        except AutoscaleConfigError as error:
            raise UpConfigError(f"{source}: invalid configuration\n  {error}") from None
    if config.routing.semantic is not None:
        # Decisions may only send to models this file serves.
        targets = Targets(models={pool.model for pool in config.pools})
        try:
            load_semantic(config.routing.semantic, targets, embedders, "routing.semantic")
        except SemanticConfigError as error:
            raise UpConfigError(f"{source}: invalid configuration\n  {error}") from None
    return config


def _describe(source: str, error: ValidationError, data: Any) -> str:
    lines = [f"{source}: invalid configuration"]
    for issue in error.errors():
        location = field_path(issue["loc"], data)
        value = f" (got {issue['input']!r})" if issue["type"] != "missing" else ""
        lines.append(f"  {location}: {issue['msg']}{value}")
    return "\n".join(lines)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
