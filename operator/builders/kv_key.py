"""The KV auth key a model's workers share, as a Secret, and how a pod reads it.

    Secret triskel-kv-key-<model>   one per model and namespace; data.key: 64 hex digits
        └─► volume kv-auth-key (read-only) ──► /var/run/secrets/triskel.io/kv-auth/key
                                              └─► triskel worker --kv-auth-key-file <that>

Every pool of a model in a namespace mounts the same Secret: the router pairs any
prefill pool of a model with any of its decode pools, and a decode worker pulls KV only
from a worker holding the same key (workers/kv/capability.py). The Secret has no owner:
deleting one pool must not rotate the key under the model's other pools. The operator
creates it when missing and never changes it, so a Secret created beforehand (by a user
bringing their own key) is used as it is.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any

from triskel.operator.builders.labels import (
    APP_NAME,
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    NAME_LABEL,
    label_value,
)

Json = dict[str, Any]

SECRET_PREFIX = "triskel-kv-key-"
SECRET_KEY = "key"
KV_KEY_COMPONENT = "kv-auth-key"
# The exact model name; the label holds it sanitised, the Secret's name lowercased.
MODEL_ANNOTATION = "triskel.io/model"
KV_KEY_VOLUME = "kv-auth-key"
KV_KEY_MOUNT_DIR = "/var/run/secrets/triskel.io/kv-auth"
KV_KEY_FILE = f"{KV_KEY_MOUNT_DIR}/{SECRET_KEY}"
# The mount is root's and the worker image runs as uid 10001 (no fsGroup), so the file
# must be readable by others; nothing but the worker runs in its container.
_KEY_FILE_MODE = 0o444
_KEY_RANDOM_BYTES = 32
# A name that is also a DNS label (63 characters) reads well everywhere it is shown.
_NAME_MAX_CHARS = 63
_HASH_CHARS = 8
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def kv_key_secret_name(model: str) -> str:
    """The Secret holding `model`'s KV auth key: `triskel-kv-key-<model>`.

    A model name that is not already a valid lowercase name, or is too long, is
    lowercased, its other characters runs of `-`, and it ends in 8 hex digits of
    the exact name's hash: `Llama-3.1-8B` and `llama-3.1-8b` get different keys.
    """
    room = _NAME_MAX_CHARS - len(SECRET_PREFIX)
    cleaned = _INVALID_RUN.sub("-", model.lower()).strip("-")
    if cleaned == model and len(cleaned) <= room:
        return SECRET_PREFIX + cleaned
    digest = hashlib.sha256(model.encode()).hexdigest()[:_HASH_CHARS]
    head = cleaned[: room - _HASH_CHARS - 1].rstrip("-")
    return f"{SECRET_PREFIX}{head}-{digest}" if head else SECRET_PREFIX + digest


def new_kv_key() -> bytes:
    """A fresh key: 32 random bytes as 64 hex digits. Text, because a worker strips
    whitespace around the file's bytes (raw bytes could lose some and fall short)."""
    return secrets.token_bytes(_KEY_RANDOM_BYTES).hex().encode()


def build_kv_key_secret(namespace: str, model: str, key: bytes) -> Json:
    """The Secret holding `key` (from `new_kv_key`) for `model`'s pools in `namespace`.

    No ownerReferences, on purpose: the key outlives any one pool (see the module doc).
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": kv_key_secret_name(model),
            "namespace": namespace,
            "labels": {
                NAME_LABEL: APP_NAME,
                COMPONENT_LABEL: KV_KEY_COMPONENT,
                MANAGED_BY_LABEL: MANAGED_BY,
                MODEL_LABEL: label_value(model),
            },
            "annotations": {MODEL_ANNOTATION: model},
        },
        "type": "Opaque",
        "data": {SECRET_KEY: base64.b64encode(key).decode()},
    }


def kv_key_volume(model: str) -> Json:
    """The pod volume holding `model`'s key file (the pod waits for the Secret)."""
    return {
        "name": KV_KEY_VOLUME,
        "secret": {
            "secretName": kv_key_secret_name(model),
            "items": [{"key": SECRET_KEY, "path": SECRET_KEY}],
            "defaultMode": _KEY_FILE_MODE,
        },
    }


def kv_key_mount() -> Json:
    """The worker container's read-only mount of `kv_key_volume` at KV_KEY_MOUNT_DIR."""
    return {"name": KV_KEY_VOLUME, "mountPath": KV_KEY_MOUNT_DIR, "readOnly": True}
