"""The routers security_cost.py compares, and how each is started: one `triskel router`
per variant of TLS, API keys, rate limits and Redis, over two `triskel worker`s."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.tls_certs import Pki

# Generous: the run never meets them, so every request pays the whole check.
_RATE_LIMIT = {"requestsPerMinute": 60_000, "tokensPerMinute": 6_000_000}
_POOL = {"role": "unified", "model": "bench", "profile": {"timeScale": 0.0001}}


@dataclass(frozen=True, slots=True)
class Variant:
    """One router's settings."""

    name: str
    https: bool = False
    worker_mtls: bool = False
    api_key: bool = False
    rate_limit: bool = False  # the key has limits, in Redis buckets
    redis: bool = False  # the router shares routing state (and buckets) in Redis
    lease: float | None = None  # auth.rateLimitLease; None: the default (leased slices)


VARIANTS = (
    Variant("plaintext"),
    # The same settings in another process: the difference is the run's noise floor.
    Variant("plaintext_again"),
    Variant("plaintext_redis", redis=True),
    Variant("key", api_key=True),
    # lease 0: a Redis round trip on every request, as before leased slices.
    Variant("key_ratelimit_exact", api_key=True, rate_limit=True, redis=True, lease=0.0),
    Variant("key_ratelimit", api_key=True, rate_limit=True, redis=True),
    Variant("https", https=True),
    Variant("https_mtls", https=True, worker_mtls=True),
    Variant(
        "everything_exact",
        https=True,
        worker_mtls=True,
        api_key=True,
        rate_limit=True,
        redis=True,
        lease=0.0,
    ),
    Variant("everything", https=True, worker_mtls=True, api_key=True, rate_limit=True, redis=True),
)


def api_key(variant: Variant) -> str:
    return f"tsk_bench-{variant.name}-{secrets.token_hex(8)}"


def keys_file(path: Path, keys: dict[str, str]) -> Path:
    lines = ["keys:"]
    for name, key in keys.items():
        sha = hashlib.sha256(key.encode()).hexdigest()
        limited = next(v for v in VARIANTS if v.name == name).rate_limit
        limit = f", rateLimit: {json.dumps(_RATE_LIMIT)}" if limited else ""
        lines.append(f"  - {{name: {name}, sha256: {sha}, tenant: bench{limit}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def router_config(
    variant: Variant, worker: str, pki: Pki, keys_path: Path, redis_url: str
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "httpAddress": "127.0.0.1:0",
        "grpcAddress": "127.0.0.1:0",
        "metricsAddress": "127.0.0.1:0",
        "workers": [worker],
    }
    if variant.https:
        config["tls"] = {"certFile": str(pki.server.cert_path), "keyFile": str(pki.server.key_path)}
    if variant.worker_mtls:
        config["workerTls"] = {
            "certFile": str(pki.client.cert_path),
            "keyFile": str(pki.client.key_path),
            "caFile": str(pki.ca.path),
        }
    if variant.api_key:
        config["auth"] = {"apiKeysFile": str(keys_path)}
        if variant.lease is not None:
            config["auth"]["rateLimitLease"] = variant.lease
    if variant.redis:
        config["redisUrl"] = redis_url
    return config


def worker_args(worker_id: str, pki: Pki | None) -> list[str]:
    args = ["worker", "--pool-json", json.dumps(_POOL), "--worker-id", worker_id]
    args += ["--grpc-address", "127.0.0.1:0"]
    if pki is not None:
        args += ["--tls-cert-file", str(pki.server.cert_path)]
        args += ["--tls-key-file", str(pki.server.key_path)]
        args += ["--tls-client-ca-file", str(pki.ca.path)]
    return args
