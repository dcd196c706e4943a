"""State shared by router replicas: load in flight, ring membership, prefix history.

`open_state(redis_url, router_id=...)` gives Redis-backed state that degrades to
memory while Redis is out, or purely local state without a URL; `open_kv_relay`
shares the precise KV index's events the same way (None without a URL).
"""

from triskel.router.state.config import StateConfig
from triskel.router.state.factory import (
    connect_redis,
    open_kv_relay,
    open_state,
    read_password_file,
)
from triskel.router.state.kv_relay import KvRelay
from triskel.router.state.protocols import (
    LoadCounts,
    LoadLedger,
    PrefixHistory,
    SharedState,
    WorkerRegistry,
    load_in_flight,
)

__all__ = [
    "KvRelay",
    "LoadCounts",
    "LoadLedger",
    "PrefixHistory",
    "SharedState",
    "StateConfig",
    "WorkerRegistry",
    "connect_redis",
    "load_in_flight",
    "open_kv_relay",
    "open_state",
    "read_password_file",
]
