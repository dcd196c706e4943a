"""StateConfig rejects settings that would silently break sharing."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.state import StateConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key_prefix": ""}, "key_prefix"),
        ({"call_timeout_s": 0.0}, r"call_timeout_s must be > 0, got 0.0"),
        ({"prefix_ttl_s": -1.0}, r"prefix_ttl_s must be > 0, got -1.0"),
        # A heartbeat slower than the TTL would let a live router's share expire.
        ({"load_ttl_s": 2.0, "heartbeat_interval_s": 2.0}, r"heartbeat_interval_s \(2.0\)"),
        ({"backoff_initial_s": 5.0, "backoff_max_s": 1.0}, r"backoff_max_s \(1.0\)"),
        ({"memory_prefix_capacity": 0}, "memory_prefix_capacity must be >= 1, got 0"),
        ({"kv_lease_ttl_s": 0.0}, r"kv_lease_ttl_s must be > 0, got 0.0"),
        # A relay call bound below the blocking read would fail every idle read.
        ({"kv_read_block_s": 1.0, "kv_call_timeout_s": 1.0}, r"kv_call_timeout_s \(1.0\)"),
        # A renewal may take the whole call bound: it must land well before expiry.
        ({"kv_lease_ttl_s": 1.0, "kv_read_block_s": 0.1}, r"below half of kv_lease_ttl_s"),
        ({"kv_stream_maxlen": 0}, "kv_stream_maxlen must be >= 1, got 0"),
    ],
)
def test_bad_settings_name_the_field_and_value(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StateConfig(**changes)


def test_defaults_are_valid() -> None:
    config = StateConfig()
    assert config.call_timeout_s == 0.05  # the brief's bound on one Redis call
