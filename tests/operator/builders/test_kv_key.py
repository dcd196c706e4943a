"""The KV key Secret a model's pools share: its name, content and the absence of an owner."""

from __future__ import annotations

import base64
import re

import pytest

from triskel.operator.builders.kv_key import (
    KV_KEY_FILE,
    KV_KEY_MOUNT_DIR,
    build_kv_key_secret,
    kv_key_mount,
    kv_key_secret_name,
    kv_key_volume,
    new_kv_key,
)
from triskel.workers.kv.capability import MIN_KEY_BYTES, KvAuthKey

from support.pool_objects import validate

# A DNS-1123 label: what Kubernetes accepts as a Secret name and then some.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # Already a valid lowercase name: kept as it is, readable.
        ("m", "triskel-kv-key-m"),
        ("llama-8b", "triskel-kv-key-llama-8b"),
        # Changed by the cleaning: 8 hex digits of the exact name keep it apart from
        # another model that cleans the same (the hashes of the two names differ).
        ("meta-llama/Llama-3.1-8B", "triskel-kv-key-meta-llama-llama-3-1-8b-"),
        ("llama-3.1-8b", "triskel-kv-key-llama-3-1-8b-"),
        # Nothing usable: the hash alone.
        ("///", "triskel-kv-key-"),
    ],
)
def test_secret_names_are_dns_labels_named_after_the_model(model: str, expected: str) -> None:
    name = kv_key_secret_name(model)
    assert DNS_LABEL.match(name), name
    assert name.startswith(expected)
    if name != expected:
        assert re.fullmatch(re.escape(expected) + "[0-9a-f]{8}", name), name


def test_names_that_clean_alike_stay_apart_and_long_names_fit() -> None:
    assert kv_key_secret_name("Llama-8B") != kv_key_secret_name("llama-8b")
    assert kv_key_secret_name("a/b") != kv_key_secret_name("a.b")
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    assert kv_key_secret_name(long_a) != kv_key_secret_name(long_b)
    assert len(kv_key_secret_name(long_a)) == 63
    assert DNS_LABEL.match(kv_key_secret_name(long_a))


def test_the_secret_holds_the_key_for_the_model_and_belongs_to_no_pool() -> None:
    key = new_kv_key()
    secret = build_kv_key_secret("team-a", "meta-llama/Llama-3.1-8B", key)
    validate(secret)
    metadata = secret["metadata"]
    assert metadata["name"] == kv_key_secret_name("meta-llama/Llama-3.1-8B")
    assert metadata["namespace"] == "team-a"
    # Deleting one pool must not delete (and so rotate) the key of the model's others.
    assert "ownerReferences" not in metadata
    assert metadata["annotations"] == {"triskel.io/model": "meta-llama/Llama-3.1-8B"}
    assert metadata["labels"]["triskel.io/model"] == "meta-llama_Llama-3.1-8B"
    assert secret["data"] == {"key": base64.b64encode(key).decode()}


def test_a_new_key_is_what_a_worker_accepts_whatever_its_bytes() -> None:
    keys = {new_kv_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        # 32 random bytes as hex text: whitespace stripping (KvAuthKey.from_file)
        # never shortens it, unlike raw bytes that may start or end in b"\n".
        assert re.fullmatch(rb"[0-9a-f]{64}", key)
        assert KvAuthKey(key.strip()).secret == key
        assert len(bytes.fromhex(key.decode())) >= MIN_KEY_BYTES


def test_the_volume_and_mount_put_the_key_at_the_file_the_worker_reads() -> None:
    volume, mount = kv_key_volume("m"), kv_key_mount()
    assert volume["secret"]["secretName"] == "triskel-kv-key-m"
    (item,) = volume["secret"]["items"]
    assert mount["name"] == volume["name"]
    assert mount["readOnly"] is True
    assert f"{mount['mountPath']}/{item['path']}" == KV_KEY_FILE
    assert KV_KEY_FILE.startswith(KV_KEY_MOUNT_DIR + "/")
