from __future__ import annotations

from pathlib import Path

import pytest

from triskel.workers.kv.capability import (
    MIN_KEY_BYTES,
    CapabilityRefused,
    KvAuthKey,
    new_challenge,
    process_key,
)

KEY = KvAuthKey(b"k" * MIN_KEY_BYTES)


def test_a_minted_token_checks_out_and_names_its_nonce() -> None:
    capability = KEY.mint("req-1", "prefill-0", expires_ms=1_000)
    assert KEY.check(capability.token, "req-1", "prefill-0", now_ms=999) == capability.nonce


def test_tokens_are_unguessable() -> None:
    # Same request, exporter and expiry: a fresh nonce makes a different token.
    first, second = (KEY.mint("r", "p", 1_000) for _ in range(2))
    assert first.token != second.token and len(first.nonce) == 16


@pytest.mark.parametrize(
    ("request_id", "exporter_id", "now_ms", "reason"),
    [
        ("req-2", "prefill-0", 0, "not for request req-2 here"),  # another request's token
        ("req-1", "prefill-1", 0, "not for request req-1 here"),  # another exporter's
        ("req-1", "prefill-0", 1_000, "expired"),  # expiry is exclusive
    ],
)
def test_a_token_is_bound_to_request_exporter_and_time(
    request_id: str, exporter_id: str, now_ms: int, reason: str
) -> None:
    token = KEY.mint("req-1", "prefill-0", expires_ms=1_000).token
    with pytest.raises(CapabilityRefused, match=reason):
        KEY.check(token, request_id, exporter_id, now_ms)


def tampered(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: "",  # no token at all
        lambda t: t + ".x",
        lambda t: tampered(t, 0, "v2"),
        lambda t: tampered(t, 1, "99999999"),  # a later expiry: the tag no longer matches
        lambda t: tampered(t, 2, "AAAAAAAAAAAAAAAAAAAAAA"),
        lambda t: tampered(t, 3, "not+base64/"),
    ],
)
def test_a_forged_or_malformed_token_is_refused(edit: object) -> None:
    token = KEY.mint("r", "p", expires_ms=1_000).token
    with pytest.raises(CapabilityRefused):
        KEY.check(edit(token), "r", "p", now_ms=0)  # type: ignore[operator]


def test_another_key_neither_checks_tokens_nor_proves_pulls() -> None:
    other = KvAuthKey.generate()
    token = KEY.mint("r", "p", expires_ms=1_000).token
    with pytest.raises(CapabilityRefused):
        other.check(token, "r", "p", now_ms=0)
    challenge = new_challenge()
    assert KEY.check_proof(KEY.prove(challenge, "r", token), challenge, "r", token)
    assert not KEY.check_proof(other.prove(challenge, "r", token), challenge, "r", token)
    # A proof answers one connection's challenge only: a replay on another fails.
    assert not KEY.check_proof(KEY.prove(challenge, "r", token), new_challenge(), "r", token)


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"  " + b"s" * MIN_KEY_BYTES + b"\n")  # a Secret's file may end in \n
    assert KvAuthKey.from_file(path) == KvAuthKey(b"s" * MIN_KEY_BYTES)
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match=f"holds 5 bytes, a key needs at least {MIN_KEY_BYTES}"):
        KvAuthKey.from_file(path)
    with pytest.raises(ValueError, match="kv_auth_key_file: cannot read"):
        KvAuthKey.from_file(tmp_path / "missing")


def test_the_key_stays_out_of_repr() -> None:
    assert "kkkk" not in repr(KEY)


def test_the_process_key_is_one_per_process() -> None:
    assert process_key() is process_key()
    assert process_key() != KvAuthKey.generate()
