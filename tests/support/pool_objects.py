"""Helpers for tests of the operator's builders: specs, an owner, schema checks, `$(VAR)`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes_validate

from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.server_features import ServerFeatures

KUBERNETES_VERSION = "1.32.0"
# What a 1.32 API server accepts: the builders' modern choices, checked against its schema.
FEATURES = ServerFeatures(minor=32)
OWNER_BODY: dict[str, Any] = {
    "apiVersion": "triskel.io/v1alpha1",
    "kind": "WorkerPool",
    "metadata": {"name": "p1", "namespace": "ns", "uid": "0f6c-uid"},
    "spec": {"role": "decode", "model": "m"},
}
OWNER: dict[str, Any] = {
    "apiVersion": "triskel.io/v1alpha1",
    "kind": "WorkerPool",
    "name": "p1",
    "uid": "0f6c-uid",
    "controller": True,
    "blockOwnerDeletion": True,
}
# Kubernetes' own rule for a label value.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def pool_spec(**fields: Any) -> WorkerPoolSpec:
    """A spec from camelCase fields; role and model default to decode and `m`."""
    return WorkerPoolSpec.model_validate({"role": "decode", "model": "m", **fields})


def validate(obj: Mapping[str, Any]) -> None:
    """Raises kubernetes_validate's ValidationError unless `obj` fits the 1.32 schema
    (strict: an unknown field anywhere is an error)."""
    kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion of command, args and env values.

    `$(NAME)` becomes env[NAME] when defined (left as written otherwise), `$$`
    becomes `$`, and any other `$` stays.
    """
    return "".join(env.get(name, raw) if name is not None else raw for raw, name in _tokens(text))


def referenced_vars(text: str) -> set[str]:
    """The names `$(NAME)` refers to in `text` (escaped `$$(...)` excluded)."""
    return {name for _, name in _tokens(text) if name is not None}


def _tokens(text: str) -> Iterator[tuple[str, str | None]]:
    """(literal text, None) and (`$(NAME)` as written, NAME) pieces of `text`."""
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            yield "$", None
            i += 2
        elif text.startswith("$(", i) and ")" in text[i + 2 :]:
            end = text.index(")", i + 2)
            yield text[i : end + 1], text[i + 2 : end]
            i = end + 1
        else:
            yield text[i], None
            i += 1
