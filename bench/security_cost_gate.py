"""The auth gate alone, in this process: `authenticate` then `admit`, as both fronts call
them, timed around the two calls (security_cost.py).

No sockets but Redis': what a key lookup, the grants and a rate-limit check cost the
router's event loop, with each rate-limit setting. Redis calls per request are counted
by the server (INFO commandstats) in a pass of each gate alone, before any router runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from triskel.router.auth.authenticator import Authenticator
from triskel.router.auth.config import AuthConfig
from triskel.router.auth.lease import DEFAULT_LEASE_FRACTION
from triskel.router.auth.setup import AuthRedis, open_authenticator
from triskel.router.metrics import RouterMetrics
from triskel.router.types import GenerationRequest, ModelCard

_MODELS = [ModelCard("bench", 8192)]
_KEY = "tsk_gate-bench"
_RATE_LIMIT = {"requestsPerMinute": 60_000, "tokensPerMinute": 6_000_000}
_WARMUP = 50
_COUNTED = 200
# name: (the key has limits, the limits' buckets are in Redis, auth.rateLimitLease)
_GATES = {
    "key": (False, False, 0.0),
    "key_ratelimit_local": (True, False, 0.0),
    "key_ratelimit_redis_exact": (True, True, 0.0),
    "key_ratelimit_redis": (True, True, DEFAULT_LEASE_FRACTION),
}


def _keys_file(path: Path, limited: bool) -> Path:
    sha = hashlib.sha256(_KEY.encode()).hexdigest()
    limit = f", rateLimit: {json.dumps(_RATE_LIMIT)}" if limited else ""
    path.write_text(f"keys:\n  - {{name: gate, sha256: {sha}, tenant: bench{limit}}}\n")
    return path


def _gate(name: str, redis_url: str, folder: Path) -> Authenticator:
    limited, in_redis, lease = _GATES[name]
    keys_path = _keys_file(folder / f"gate-{name}.yaml", limited)
    config = AuthConfig(api_keys_file=keys_path, rate_limit_lease=lease)
    redis = AuthRedis(redis_url, None, 0.05, lambda _operation: None) if in_redis else None
    return open_authenticator(config, redis, RouterMetrics(), lambda: _MODELS)


async def _pass_s(gate: Authenticator, index: int) -> float:
    headers = {"authorization": f"Bearer {_KEY}"}
    request = GenerationRequest(f"r{index}", "bench", prompt="a short prompt", max_tokens=1)
    start = time.perf_counter()
    principal = await gate.authenticate(headers)
    await gate.admit(principal, request)
    return time.perf_counter() - start


async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{command}", {}).get("calls", 0)) for command in ("evalsha", "eval")
    )


async def gate_cost(redis_url: str, folder: Path, num_requests: int) -> dict[str, Any]:
    """Per gate: median and p99 ms of one request's pass, and Redis calls per request."""
    gates = {name: _gate(name, redis_url, folder) for name in _GATES}
    redis = Redis.from_url(redis_url)
    samples: dict[str, list[float]] = {name: [] for name in gates}
    calls: dict[str, float] = {}
    try:
        for index in range(_WARMUP + num_requests):
            for name, gate in gates.items():
                elapsed_s = await _pass_s(gate, index)
                if index >= _WARMUP:
                    samples[name].append(elapsed_s)
        for name, gate in gates.items():
            before = await _script_calls(redis)
            for index in range(_COUNTED):
                await _pass_s(gate, index)
            calls[name] = (await _script_calls(redis) - before) / _COUNTED
    finally:
        for gate in gates.values():
            with contextlib.suppress(Exception):
                await gate.aclose()
        await redis.aclose()
    result = {}
    for name, values in samples.items():
        ordered = sorted(values)
        result[name] = {
            "median_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
            "redis_calls_per_request": calls[name],
        }
    return result
