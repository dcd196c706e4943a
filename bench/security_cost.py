"""What authentication and TLS cost a request, in one run: routers with each of them on
and off serve the same requests in turn, and KV pulls run with and without TLS.

    python bench/security_cost.py [--requests 1500] [--kv-mib 64] [--json]

Every router is its own `triskel router` process (security_cost_variants.py lists them,
plaintext twice: their difference is the run's noise floor); two `triskel worker`
processes (one plaintext, one requiring mTLS) answer all of them; a `redis-server` on a
loopback port holds the shared rate-limit buckets and, for routers given it, their
routing state. This process is the client: requests go round the routers, one each in
a shuffled order per round, each router on its own kept-alive connection (as clients
and gateways keep them), so all see the same machine at the same moments. Three
figures per router:

- latency as the client sees it: counts every side's work, the client's TLS included
  (a real client pays that too, but it is not the router's cost);
- the router's CPU per request (its process's threads, read from /proc just before and
  after each request): the router's own share, TLS records and the auth gate included;
- the router's handler time from its metrics (`triskel_e2e_seconds` sum / count, so a
  mean): from the request's receipt, after TLS decryption, to its last token.

Routers with Redis share routing state there too, which costs without any security:
their figures are also given over plaintext_redis (the same Redis, no security). Then
new connections (a TCP connect, a TLS handshake, one request), the auth gate alone in
this process (security_cost_gate.py), and a tcp KV pull of `--kv-mib` MiB plaintext
(zero-copy) and over mutual TLS. Certificates are made for the run
(tests/support/tls_certs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import ssl
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from security_cost_fleet import Child, cpu_ns, e2e_totals, triskel_child
from security_cost_gate import gate_cost
from security_cost_kv import kv_pull_s
from security_cost_variants import VARIANTS, api_key, keys_file, router_config, worker_args

from support.redis_server import RedisServer, free_loopback_port
from support.tls_certs import Pki, client_context, make_pki

_BODY = {"model": "bench", "prompt": "a short prompt for a short answer", "max_tokens": 1}
_WARMUP_ROUNDS = 50


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return 1000 * ordered[int(share * (len(ordered) - 1))]

    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
    }


async def _timed_post(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with session.post(url, json=_BODY, headers=headers) as reply:
        await reply.read()
        assert reply.status == 200, (reply.status, url)
    return time.perf_counter() - start


@dataclass(slots=True)
class _Target:
    url: str
    headers: dict[str, str]
    router: Child
    session: aiohttp.ClientSession
    latencies_s: list[float]
    cpu_ns: list[int]


async def _round_robin(targets: dict[str, _Target], num_rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    order = list(targets)
    for round_index in range(_WARMUP_ROUNDS + num_rounds):
        rng.shuffle(order)
        for name in order:
            target = targets[name]
            before_ns = cpu_ns(target.router.pid)
            elapsed_s = await _timed_post(target.session, target.url, target.headers)
            after_ns = cpu_ns(target.router.pid)
            if round_index >= _WARMUP_ROUNDS:
                target.latencies_s.append(elapsed_s)
                target.cpu_ns.append(after_ns - before_ns)


async def _new_connections(
    targets: dict[str, _Target], names: tuple[str, ...], context: ssl.SSLContext, num: int
) -> dict[str, dict[str, float]]:
    fresh: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(num):
        for name in names:
            target = targets[name]
            ssl_arg: ssl.SSLContext | bool = context if target.url.startswith("https") else False
            connector = aiohttp.TCPConnector(force_close=True, ssl=ssl_arg)
            async with aiohttp.ClientSession(connector=connector) as session:
                fresh[name].append(await _timed_post(session, target.url, target.headers))
    return {name: _summary(values) for name, values in fresh.items()}


async def _requests(
    pki: Pki, folder: Path, redis_url: str, num_rounds: int, seed: int
) -> dict[str, Any]:
    keys = {v.name: api_key(v) for v in VARIANTS if v.api_key}
    keys_path = keys_file(folder / "keys.yaml", keys)
    context = client_context(pki.ca.path)
    async with contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(
            triskel_child(worker_args("plain", None), folder / "worker-plain.log")
        )
        mtls = await stack.enter_async_context(
            triskel_child(worker_args("mtls", pki), folder / "worker-mtls.log")
        )
        targets: dict[str, _Target] = {}
        for variant in VARIANTS:
            worker = (mtls if variant.worker_mtls else plain).ready["grpc"]
            config = router_config(variant, worker, pki, keys_path, redis_url)
            args = ["router", "--config-json", json.dumps(config)]
            router = await stack.enter_async_context(
                triskel_child(args, folder / f"router-{variant.name}.log")
            )
            ssl_arg: ssl.SSLContext | bool = context if variant.https else False
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, ssl=ssl_arg))
            )
            scheme = "https" if variant.https else "http"
            headers = {"Authorization": f"Bearer {keys[variant.name]}"} if variant.api_key else {}
            url = f"{scheme}://{router.ready['http']}/v1/completions"
            targets[variant.name] = _Target(url, headers, router, session, [], [])
        async with aiohttp.ClientSession() as metrics_session:
            before = {
                n: await e2e_totals(metrics_session, t.router.ready["metrics"])
                for n, t in targets.items()
            }
            await _round_robin(targets, num_rounds, seed)
            after = {
                n: await e2e_totals(metrics_session, t.router.ready["metrics"])
                for n, t in targets.items()
            }
        new_connection = await _new_connections(
            targets, ("plaintext", "https_mtls", "everything"), context, max(1, num_rounds // 4)
        )
    routers = {}
    for name, target in targets.items():
        handler_s = (after[name][0] - before[name][0]) / max(1, after[name][1] - before[name][1])
        routers[name] = {
            **_summary(target.latencies_s),
            "router_cpu_median_ms": statistics.median(target.cpu_ns) / 1e6,
            "router_handler_mean_ms": 1000 * handler_s,
        }
    latencies_s = {name: target.latencies_s for name, target in targets.items()}
    return {
        "kept_alive": routers,
        "added": _added(routers, latencies_s),
        "new_connection": new_connection,
    }


_COMPARED = ("median_ms", "p99_ms", "router_cpu_median_ms", "router_handler_mean_ms")


def _added(
    routers: dict[str, dict[str, float]], latencies_s: dict[str, list[float]]
) -> dict[str, dict[str, float]]:
    """Each router's figures less plaintext's; a Redis router's also less
    plaintext_redis' (the same Redis routing state, no security): security alone.

    `paired_median_ms`: the median of the differences within each round (both requests
    a few milliseconds apart), which a machine's load changing during the run moves less
    than the difference of the two medians."""
    added: dict[str, dict[str, float]] = {}
    for variant in VARIANTS[1:]:
        bases = ["plaintext"]
        if variant.redis and variant.name != "plaintext_redis":
            bases.append("plaintext_redis")
        for base in bases:
            figures = {
                figure: routers[variant.name][figure] - routers[base][figure]
                for figure in _COMPARED
            }
            pairs = zip(latencies_s[variant.name], latencies_s[base], strict=True)
            figures["paired_median_ms"] = 1000 * statistics.median(a - b for a, b in pairs)
            added[f"{variant.name} over {base}"] = figures
    return added


def _started_redis(folder: Path) -> RedisServer:
    # Another process may take the probed port before redis-server binds it: try a few.
    for _ in range(3):
        server = RedisServer(free_loopback_port(), folder)
        with contextlib.suppress(RuntimeError):
            server.start()
            return server
    raise SystemExit("security_cost: could not start redis-server on a loopback port")


async def _main(num_rounds: int, kv_mib: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="triskel-security-bench-") as name:
        folder = Path(name)
        pki = make_pki(folder)
        redis = _started_redis(folder)
        try:
            gate = await gate_cost(redis.url, folder, num_rounds)
            result = await _requests(pki, folder, redis.url, num_rounds, seed)
        finally:
            redis.stop()
        kv = {}
        for mode, with_tls in (("plaintext", False), ("tls", True)):
            seconds = await kv_pull_s(pki, kv_mib, with_tls)
            kv[mode] = {"pull_ms": 1000 * seconds, "gbit_per_s": kv_mib * 8 / 1024 / seconds}
    return {
        **result,
        "gate": gate,
        "kv_tcp_pull": {"size_mib": kv_mib, **kv},
        "requests_per_router": num_rounds,
        "seed": seed,
    }


def _print(result: dict[str, Any]) -> None:
    print("kept-alive requests (ms)       median    p90     p99  router CPU  handler mean")
    for name, f in result["kept_alive"].items():
        print(
            f"  {name:26} {f['median_ms']:7.3f} {f['p90_ms']:7.3f} {f['p99_ms']:7.3f}"
            f"  {f['router_cpu_median_ms']:8.3f}  {f['router_handler_mean_ms']:8.3f}"
        )
    print("added (ms)                                 median  paired    p99  router CPU  handler")
    for name, f in result["added"].items():
        print(
            f"  {name:40} {f['median_ms']:+7.3f} {f['paired_median_ms']:+7.3f}"
            f" {f['p99_ms']:+7.3f}  {f['router_cpu_median_ms']:+8.3f}"
            f"  {f['router_handler_mean_ms']:+7.3f}"
        )
    print("new connections (ms)           median    p90     p99")
    for name, f in result["new_connection"].items():
        print(f"  {name:26} {f['median_ms']:7.3f} {f['p90_ms']:7.3f} {f['p99_ms']:7.3f}")
    print("auth gate alone, in process (ms)  median    p99  Redis calls / request")
    for name, f in result["gate"].items():
        print(
            f"  {name:30} {f['median_ms']:7.4f} {f['p99_ms']:7.4f}"
            f"  {f['redis_calls_per_request']:.3f}"
        )
    kv = result["kv_tcp_pull"]
    for mode in ("plaintext", "tls"):
        print(
            f"kv tcp pull {kv['size_mib']} MiB {mode:10} {kv[mode]['pull_ms']:8.1f} ms"
            f"  {kv[mode]['gbit_per_s']:6.2f} Gbit/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="measured, per router")
    parser.add_argument("--kv-mib", type=int, default=64)
    parser.add_argument("--seed", type=int, default=19, help="the rounds' shuffled order")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = asyncio.run(_main(args.requests, args.kv_mib, args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
