"""The benchmark suite file (`triskel simulate --suite FILE`): workloads × policies.

    seed: 0
    cluster: {numPrefill: 8, numDecode: 8}           # every workload's, unless it sets one
    slo: {ttftMs: 5000, tpotMs: 100, attainment: 0.9}
    goodput: {start: 1, low: 0.0625, high: 64, tolerance: 0.05}  # first probe, floor, cap, width
    policies:
      subject: ../policies/triskel.yaml              # the policy the ratios are about
      baseline: round-robin
      peers: [../policies/llm-d.yaml, ...]
    workloads:
      - {name: mooncake-conversation, trace: ../../shared/traces/x.jsonl, limit: 4000}
      - {name: rag, trace: "synthetic:suite/rag.yaml", slo: {ttftMs: 8000, tpotMs: 100}}

Paths are relative to the suite file. `load_suite` checks everything it can without
simulating (fields, bounds, files, the policies' routing) and raises `SuiteError`
naming the file and the field: `bench/suite.yaml: workloads.2.limit: ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, ValidationError, model_validator

from triskel.common.api import ApiModel
from triskel.router.scheduling.types import LOAD_REPORT_INTERVAL_MS
from triskel.simulator.cluster import DEFAULT_PROFILE, ClusterShape
from triskel.simulator.command import ROUND_ROBIN, Policy, SimulateError, load_policy
from triskel.simulator.metrics import SloTargets
from triskel.traces.errors import TraceError
from triskel.traces.loading import SYNTHETIC_PREFIX, load_synthetic_file


class SuiteError(ValueError):
    """A suite file that cannot run; `field` is the dotted camelCase path (or None)."""

    def __init__(self, path: Path, field: str | None, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: {problem}" if field is None else f"{path}: {field}: {problem}")


class ClusterSpec(ApiModel):
    num_unified: Annotated[int, Field(ge=0)] = 0
    num_prefill: Annotated[int, Field(ge=0)] = 0
    num_decode: Annotated[int, Field(ge=0)] = 0
    profile: str = DEFAULT_PROFILE
    kv_capacity_tokens: Annotated[int, Field(gt=0)] | None = None
    """Overrides the profile's KV tokens per instance."""
    host_kv_capacity_tokens: Annotated[int, Field(ge=0)] = 0
    """Each instance's host-memory KV tier in tokens (0: none)."""
    load_report_interval_ms: Annotated[float, Field(ge=0)] = LOAD_REPORT_INTERVAL_MS
    """How often instances report their load (the router's 50 ms); 0: picks read it at once."""


class SloSpec(ApiModel):
    ttft_ms: Annotated[float, Field(gt=0)]
    tpot_ms: Annotated[float, Field(gt=0)]
    attainment: Annotated[float, Field(gt=0, le=1)] = 0.9
    """Share of requests meeting both targets that counts as serving the rate."""


class GoodputSearchSpec(ApiModel):
    start: Annotated[float, Field(gt=0)] = 1.0
    """First rate scale probed (1: the workload's own rate, whose run is reported anyway);
    the search doubles from it while policies pass, halves while they miss."""
    low: Annotated[float, Field(gt=0)] = 0.0625
    """Lowest rate scale probed: a policy missing it shows as < low."""
    high: Annotated[float, Field(gt=0, le=1024)] = 64.0
    """Highest rate scale probed: a policy meeting it shows as ≥ high."""
    tolerance: Annotated[float, Field(gt=0, le=1)] = 0.05
    """Relative width at which bisection stops."""

    @model_validator(mode="after")
    def _ordered(self) -> GoodputSearchSpec:
        if not self.low <= self.start <= self.high:
            raise ValueError(
                f"need low <= start <= high, got {self.low:g}, {self.start:g}, {self.high:g}"
            )
        return self


class PoliciesSpec(ApiModel):
    subject: str
    """The policy under test: its goodput is divided by the best peer's and the baseline's."""
    baseline: str = ROUND_ROBIN
    peers: Annotated[list[str], Field(min_length=1)]


class WorkloadSpec(ApiModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=63)]
    trace: str
    """A .jsonl (Mooncake) or .csv (Azure) file, or synthetic:FILE, relative to the suite."""
    limit: Annotated[int, Field(ge=1)] | None = None
    """Replay the first N requests only."""
    cluster: ClusterSpec | None = None
    slo: SloSpec | None = None
    goodput: GoodputSearchSpec | None = None


class SuiteFile(ApiModel):
    seed: Annotated[int, Field(ge=0)] = 0
    cluster: ClusterSpec
    slo: SloSpec
    goodput: GoodputSearchSpec = Field(default_factory=GoodputSearchSpec)
    policies: PoliciesSpec
    workloads: Annotated[list[WorkloadSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> SuiteFile:
        names = [w.name for w in self.workloads]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"workload names must be unique; repeated: {', '.join(repeated)}")
        return self


@dataclass(frozen=True, slots=True)
class Workload:
    """One row of the suite's table, resolved: a trace source `load_trace` reads."""

    name: str
    trace: str
    limit: int | None
    shape: ClusterShape
    slo: SloTargets
    search: GoodputSearchSpec


@dataclass(frozen=True, slots=True)
class Suite:
    path: Path
    seed: int
    subject: Policy
    baseline: Policy
    peers: tuple[Policy, ...]
    workloads: tuple[Workload, ...]

    @property
    def policies(self) -> tuple[Policy, ...]:
        """Baseline, peers, subject: the order the table reads."""
        return (self.baseline, *self.peers, self.subject)


def load_suite(path: Path) -> Suite:
    """The suite at `path`, every file it names checked; SuiteError otherwise."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SuiteError(path, None, f"cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SuiteError(path, None, f"not valid YAML: {error}") from None
    try:
        file = SuiteFile.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise SuiteError(path, field, first["msg"]) from None
    policies = file.policies
    subject = _policy(path, "policies.subject", policies.subject)
    baseline = _policy(path, "policies.baseline", policies.baseline)
    peers = tuple(
        _policy(path, f"policies.peers.{n}", spec) for n, spec in enumerate(policies.peers)
    )
    names = [p.name for p in (baseline, *peers, subject)]
    if len(set(names)) != len(names):
        # The table's columns are keyed by name (a policy file's stem).
        raise SuiteError(path, "policies", f"two policies share a name in {names}; rename one")
    workloads = tuple(
        _workload(path, f"workloads.{n}", spec, file) for n, spec in enumerate(file.workloads)
    )
    return Suite(path, file.seed, subject, baseline, peers, workloads)


def _policy(path: Path, field: str, spec: str) -> Policy:
    resolved = spec if spec == ROUND_ROBIN else str(path.parent / spec)
    try:
        return load_policy(resolved)
    except SimulateError as error:
        problem = str(error).removeprefix(f"--policy {resolved}: ")
        raise SuiteError(path, field, f"{spec}: {problem}") from None


def _workload(path: Path, field: str, spec: WorkloadSpec, file: SuiteFile) -> Workload:
    is_synthetic = spec.trace.startswith(SYNTHETIC_PREFIX)
    relative = spec.trace.removeprefix(SYNTHETIC_PREFIX)
    trace_path = path.parent / relative
    if not trace_path.is_file():
        raise SuiteError(path, f"{field}.trace", f"{relative}: no such file")
    if is_synthetic:
        try:
            load_synthetic_file(trace_path)  # its fields now, its requests at run time
        except TraceError as error:
            raise SuiteError(path, f"{field}.trace", str(error)) from None
    cluster = spec.cluster or file.cluster
    try:
        shape = ClusterShape(
            num_unified=cluster.num_unified,
            num_prefill=cluster.num_prefill,
            num_decode=cluster.num_decode,
            profile=cluster.profile,
            kv_capacity_tokens=cluster.kv_capacity_tokens,
            host_kv_capacity_tokens=cluster.host_kv_capacity_tokens,
            load_report_interval_ms=cluster.load_report_interval_ms,
        )
    except ValidationError as error:
        where = f"{field}.cluster" if spec.cluster else "cluster"
        raise SuiteError(path, where, error.errors()[0]["msg"]) from None
    slo = spec.slo or file.slo
    return Workload(
        name=spec.name,
        trace=(SYNTHETIC_PREFIX if is_synthetic else "") + str(trace_path),
        limit=spec.limit,
        shape=shape,
        slo=SloTargets(slo.ttft_ms / 1000, slo.tpot_ms / 1000, slo.attainment),
        search=spec.goodput or file.goodput,
    )
