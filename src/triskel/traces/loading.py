"""One entry point for every workload source: `load_trace("<source>")`.

path/to/trace.jsonl     Mooncake JSON Lines
path/to/trace.csv       Azure CSV
synthetic:spec.yaml     a synthetic workload (`seed` + `spec`, see docs/traces.md)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from triskel.common.api import ApiModel
from triskel.traces.azure import load_azure
from triskel.traces.errors import TraceError
from triskel.traces.mooncake import load_mooncake
from triskel.traces.synthetic import SyntheticSpec, synthetic_trace
from triskel.traces.types import Trace

SYNTHETIC_PREFIX = "synthetic:"


class SyntheticFile(ApiModel):
    """A synthetic workload file: the spec and the seed that pins its random draws."""

    seed: int = Field(default=0, ge=0)
    spec: SyntheticSpec


def load_trace(source: str, limit: int | None = None) -> Trace:
    """The trace `source` names, its first `limit` requests when set.

    Raises TraceError naming the path for an unknown kind or a bad file.
    """
    path = Path(source.removeprefix(SYNTHETIC_PREFIX))
    try:
        return _load(source, path, limit)
    except OSError as error:
        # A missing or unreadable file is the user's input too: one line, no traceback.
        raise TraceError(path, None, None, f"cannot read: {error.strerror}") from None


def _load(source: str, path: Path, limit: int | None) -> Trace:
    if source.startswith(SYNTHETIC_PREFIX):
        trace = _load_synthetic(path)
        trace = replace(trace, name=path.stem, source=source)
        return trace if limit is None else trace.head(limit)
    if path.suffix == ".jsonl":
        return load_mooncake(path, limit)
    if path.suffix == ".csv":
        return load_azure(path, limit)
    raise TraceError(
        path,
        None,
        None,
        "unknown trace kind: expected a .jsonl (Mooncake) or .csv (Azure) file"
        f" or {SYNTHETIC_PREFIX}<spec.yaml>",
    )


def load_synthetic_file(path: Path) -> SyntheticFile:
    """The synthetic workload file at `path`; TraceError names the first bad field."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise TraceError(path, line, None, f"invalid YAML: {error}") from None
    try:
        return SyntheticFile.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise TraceError(path, None, field, first["msg"]) from None


def _load_synthetic(path: Path) -> Trace:
    if not path.is_file():
        raise TraceError(path, None, None, "synthetic spec file not found")
    file = load_synthetic_file(path)
    return synthetic_trace(file.spec, file.seed)
