"""Who a pool's children are: their labels, the pods' selector, their owner.

Every object the operator creates for WorkerPool `p` is named `p` (Deployment,
headless Service, PodDisruptionBudget) and carries these labels:

    app.kubernetes.io/name: triskel            ┐
    app.kubernetes.io/component: worker        ├ the selector: never changes for a pool
    triskel.io/pool: p                         ┘ (a Deployment's selector is immutable)
    app.kubernetes.io/managed-by: triskel-operator
    triskel.io/role: prefill                   may change (role switch): not selected on
    triskel.io/model: meta-llama_Llama-3.1-8B  sanitised, informational only
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from triskel.common.api import WorkerPoolSpec

Json = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
POOL_LABEL = "triskel.io/pool"
ROLE_LABEL = "triskel.io/role"
MODEL_LABEL = "triskel.io/model"

APP_NAME = "triskel"
WORKER_COMPONENT = "worker"
MANAGED_BY = "triskel-operator"

_LABEL_VALUE_MAX_CHARS = 63
_HASH_CHARS = 8
# Characters a label value may not contain; each run of them becomes one "_".
_INVALID_RUN = re.compile(r"[^A-Za-z0-9._-]+")
# A label value must begin and end with an alphanumeric character.
_EDGE_JUNK = "._-"


def label_value(text: str) -> str:
    """`text` as a valid label value (at most 63 characters of [A-Za-z0-9._-],
    alphanumeric at both ends).

    `meta-llama/Llama-3.1-8B-Instruct` becomes `meta-llama_Llama-3.1-8B-Instruct`.
    A value that must be shortened keeps its head and ends in 8 hex digits of its
    hash, so two long model names that share a prefix still get different labels.
    """
    cleaned = _INVALID_RUN.sub("_", text).strip(_EDGE_JUNK)
    if cleaned and len(cleaned) <= _LABEL_VALUE_MAX_CHARS:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]
    head = cleaned[: _LABEL_VALUE_MAX_CHARS - _HASH_CHARS - 1].rstrip(_EDGE_JUNK)
    return f"{head}-{digest}" if head else digest


def pool_selector(pool_name: str) -> dict[str, str]:
    """The labels that select pool `pool_name`'s pods (and only them)."""
    return {NAME_LABEL: APP_NAME, COMPONENT_LABEL: WORKER_COMPONENT, POOL_LABEL: pool_name}


def selector_string(pool_name: str) -> str:
    """The selector as `kubectl get -l` takes it: the scale subresource's `status.selector`."""
    return ",".join(f"{key}={value}" for key, value in sorted(pool_selector(pool_name).items()))


def pool_labels(pool_name: str, spec: WorkerPoolSpec) -> dict[str, str]:
    """Every label of the pool's children and pods: the selector plus descriptive ones."""
    return {
        **pool_selector(pool_name),
        MANAGED_BY_LABEL: MANAGED_BY,
        ROLE_LABEL: str(spec.role),
        MODEL_LABEL: label_value(spec.model),
    }


def owner_reference(body: Mapping[str, Any]) -> Json:
    """The owner reference that makes a child belong to the custom resource `body`.

    `controller: true` marks the operator as the one manager of the child;
    `blockOwnerDeletion: true` makes foreground deletion of the owner wait for it.
    ValueError names what `body` lacks.
    """
    metadata = body.get("metadata") or {}
    fields = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
    }
    missing = [
        key if key in ("apiVersion", "kind") else f"metadata.{key}"
        for key, value in fields.items()
        if not value
    ]
    if missing:
        raise ValueError(f"cannot own children: the owner has no {', '.join(missing)}")
    return {**fields, "controller": True, "blockOwnerDeletion": True}


def child_metadata(pool_name: str, namespace: str, spec: WorkerPoolSpec, owner: Json) -> Json:
    """`metadata` of one of the pool's children: named after the pool, labelled, owned."""
    return {
        "name": pool_name,
        "namespace": namespace,
        "labels": pool_labels(pool_name, spec),
        "ownerReferences": [dict(owner)],
    }
