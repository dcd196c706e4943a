"""Settings shared by every shared-state backend, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Key namespace, lifetimes and Redis call bounds.

    `load_ttl_s`: how long a router's load share outlives its last heartbeat (a
    crashed router's in-flight counts vanish after this). `member_ttl_s`: the same
    for a worker's ring membership. `prefix_ttl_s`: how long a (worker, block)
    record counts as "recently sent" (Dynamo's approximate mode uses 120 s).
    `call_timeout_s` bounds every Redis call so a hung Redis cannot stall routing;
    after a failure Redis is retried after `backoff_initial_s`, doubling up to
    `backoff_max_s` while it keeps failing.

    The KV relay (`kv_relay.py`) has bounds of its own, as its calls run beside
    scheduling, never on it: one replica holds each worker's lease for
    `kv_lease_ttl_s` (so a dead holder is replaced within about that long) and renews
    it every third of it; a blocking stream read waits up to `kv_read_block_s`, and
    every relay call, blocking reads included, is bounded by `kv_call_timeout_s`. A
    worker's stream keeps about `kv_stream_maxlen` entries (approximate trimming).
    """

    key_prefix: str = "triskel"
    load_ttl_s: float = 10.0
    member_ttl_s: float = 15.0
    prefix_ttl_s: float = 120.0
    heartbeat_interval_s: float = 3.0
    call_timeout_s: float = 0.05
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    # In-memory prefix history bound: llm-d keeps 31,250 blocks per pod.
    memory_prefix_capacity: int = 500_000
    kv_lease_ttl_s: float = 5.0
    kv_read_block_s: float = 0.5
    kv_call_timeout_s: float = 1.0
    kv_stream_maxlen: int = 10_000

    def __post_init__(self) -> None:
        if not self.key_prefix:
            raise ValueError("StateConfig.key_prefix must not be empty")
        for name in (
            "load_ttl_s",
            "member_ttl_s",
            "prefix_ttl_s",
            "heartbeat_interval_s",
            "call_timeout_s",
            "backoff_initial_s",
            "kv_lease_ttl_s",
            "kv_read_block_s",
        ):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"StateConfig.{name} must be > 0, got {value}")
        if self.heartbeat_interval_s >= min(self.load_ttl_s, self.member_ttl_s):
            raise ValueError(
                f"StateConfig.heartbeat_interval_s ({self.heartbeat_interval_s}) must be below "
                f"load_ttl_s ({self.load_ttl_s}) and member_ttl_s ({self.member_ttl_s}), "
                "or live routers' shares would expire between heartbeats"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"StateConfig.backoff_max_s ({self.backoff_max_s}) must be >= "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
        if self.memory_prefix_capacity < 1:
            raise ValueError(
                "StateConfig.memory_prefix_capacity must be >= 1, "
                f"got {self.memory_prefix_capacity}"
            )
        if self.kv_call_timeout_s <= self.kv_read_block_s:
            raise ValueError(
                f"StateConfig.kv_call_timeout_s ({self.kv_call_timeout_s}) must be above "
                f"kv_read_block_s ({self.kv_read_block_s}), or every idle blocking read "
                "would count as a Redis failure"
            )
        if self.kv_call_timeout_s >= self.kv_lease_ttl_s / 2:
            raise ValueError(
                f"StateConfig.kv_call_timeout_s ({self.kv_call_timeout_s}) must be below half "
                f"of kv_lease_ttl_s ({self.kv_lease_ttl_s}), or a slow renewal could land "
                "after the lease expired"
            )
        if self.kv_stream_maxlen < 1:
            raise ValueError(
                f"StateConfig.kv_stream_maxlen must be >= 1, got {self.kv_stream_maxlen}"
            )
