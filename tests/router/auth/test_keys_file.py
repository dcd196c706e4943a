"""The API keys file: valid files become principals by hash; bad ones name the field."""

from __future__ import annotations

import hashlib

import pytest

from triskel.router.auth.keys_file import (
    KEY_PREFIX,
    KeysFileError,
    hash_key,
    new_key,
    parse_keys_file,
)
from triskel.router.auth.principal import RateLimit

KEY = "tsk_test-key-a"
SHA = hashlib.sha256(KEY.encode()).hexdigest()


def test_a_valid_file_maps_each_hash_to_its_principal() -> None:
    text = f"""
keys:
  - name: team-a
    sha256: {SHA.upper()}
    tenant: acme
    models: [m, auto]
    maxPriority: 5
    rateLimit: {{requestsPerMinute: 60, tokensPerMinute: 1000}}
  - name: team-b
    sha256: {"b" * 64}
    tenant: other
"""
    table = parse_keys_file(text, "keys.yaml")
    # Upper-case hex is accepted and stored lower-case, as hash_key produces it.
    principal = table[hash_key(KEY)]
    assert principal.name == "team-a" and principal.tenant == "acme"
    assert principal.models == frozenset({"m", "auto"})
    assert principal.max_priority == 5
    assert principal.limits == RateLimit(requests_per_minute=60, tokens_per_minute=1000)
    assert principal.bucket == "key:team-a"
    other = table["b" * 64]
    # Absent models: every model; absent maxPriority: the default priority, 0.
    assert other.models is None and other.max_priority == 0
    assert other.limits == RateLimit()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # The field's path, with the entry's name, and what is wrong.
        ("name: a\n    sha256: xyz\n    tenant: t", r"keys\[0\]\(a\)\.sha256: String should"),
        (f"name: a\n    sha256: {SHA}\n    tenant: t\n    models: []", r"keys\[0\]\(a\)\.models"),
        (f"name: a b\n    sha256: {SHA}\n    tenant: t", r"keys\[0\]\(a b\)\.name"),
        (f"name: a\n    sha256: {SHA}\n    tenant: t\n    colour: red", r"keys\[0\]\(a\)\.colour"),
        (
            f"name: a\n    sha256: {SHA}\n    tenant: t\n    rateLimit: {{requestsPerMinute: 0}}",
            r"keys\[0\]\(a\)\.rateLimit\.requestsPerMinute: Input should be greater",
        ),
        (f"name: a\n    sha256: {SHA}", r"keys\[0\]\(a\)\.tenant: Field required"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_field(entry: str, expected: str) -> None:
    with pytest.raises(KeysFileError, match=rf"^keys\.yaml: {expected}"):
        parse_keys_file(f"keys:\n  - {entry}\n", "keys.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keys: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping with `keys`"),
        ("{}", "keys: Field required"),
        (
            f"keys:\n  - {{name: a, sha256: {SHA}, tenant: t}}\n"
            f"  - {{name: a, sha256: {'c' * 64}, tenant: t}}\n",
            r"keys\[1\]\.name: 'a' is used twice",
        ),
        (
            f"keys:\n  - {{name: a, sha256: {SHA}, tenant: t}}\n"
            f"  - {{name: b, sha256: {SHA}, tenant: t}}\n",
            r"keys\[1\]\(b\)\.sha256: the same key twice",
        ),
    ],
)
def test_a_bad_file_is_refused_saying_why(text: str, expected: str) -> None:
    with pytest.raises(KeysFileError, match=expected):
        parse_keys_file(text, "keys.yaml")


def test_an_empty_key_list_is_valid_and_admits_nobody() -> None:
    # Revoking every key is a valid state, not a broken file.
    assert parse_keys_file("keys: []", "keys.yaml") == {}


def test_new_keys_are_random_prefixed_and_hash_to_sha256_hex() -> None:
    first, second = new_key(), new_key()
    assert first != second and first.startswith(KEY_PREFIX)
    assert len(first) >= len(KEY_PREFIX) + 43  # 256 bits in base64url
    assert hash_key(first) == hashlib.sha256(first.encode()).hexdigest()
