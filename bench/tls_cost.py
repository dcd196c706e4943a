"""What TLS costs a request, in one run: the same requests through a plaintext router and
a TLS one (HTTPS in front, mTLS to its worker), and KV pulls with and without TLS.

    python bench/tls_cost.py [--requests 400] [--kv-mib 64] [--json]

Everything runs in this process on one event loop, the client included: a request's
difference between the routers counts the client's encryption (and the worker's) too,
so it is an upper bound on what TLS adds to the router. Three routers: plaintext,
HTTPS in front only, HTTPS in front and mTLS to their worker. Requests alternate between
them, each on its own kept-alive connection (as clients and gateways keep them), so
both see the same machine at the same moments. New connections are measured apart
(a TCP connect, plus a TLS handshake, plus one request). KV: a tcp pull of `--kv-mib`
MiB between two connectors, plaintext (zero-copy) and mutual TLS. Certificates are made
for the run (tests/support/tls_certs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from triskel.common.tls import TlsFiles
from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.registry import create_connector
from triskel.workers.process import (
    WorkerEndpoints,
    WorkerProcessConfig,
    run_worker,
)

from support.tls_certs import Pki, client_context, make_pki

_BODY = {"model": "bench", "prompt": "a short prompt for a short answer", "max_tokens": 1}
_WARMUP = 50
# plaintext; HTTPS in front only (a plaintext worker); HTTPS in front and mTLS to the worker.
_MODES = ("plaintext", "https_only", "tls")
_BLOCK_BYTES = 1 << 20


_E = TypeVar("_E", RouterEndpoints, WorkerEndpoints)
_Run = Callable[[Any, Callable[[_E], None], asyncio.Event], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def _serving(run: _Run[_E], config: Any) -> AsyncIterator[_E]:
    stop = asyncio.Event()
    ready: asyncio.Future[_E] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(config, ready.set_result, stop))
    waiters: list[asyncio.Future[Any]] = [ready, task]
    await asyncio.wait(waiters, timeout=60, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()
    try:
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def _worker(pki: Pki | None) -> WorkerProcessConfig:
    pool = {
        "role": "unified",
        "model": "bench",
        "profile": {"timeScale": 0.0001, "kvCapacityTokens": 8192},
    }
    fields: dict[str, Any] = {"worker_id": "w", "pool": pool}
    if pki is not None:
        fields["tls"] = TlsFiles(
            cert_file=pki.server.cert_path,
            key_file=pki.server.key_path,
            ca_file=pki.ca.path,
            require_client_cert=True,
        )
    return WorkerProcessConfig.model_validate(fields)


def _router(worker: str, pki: Pki | None, to_worker: bool = True) -> RouterProcessConfig:
    fields: dict[str, Any] = {"httpAddress": "127.0.0.1:0", "grpcAddress": "127.0.0.1:0"}
    if pki is not None:
        fields["tls"] = {"certFile": str(pki.server.cert_path), "keyFile": str(pki.server.key_path)}
    if pki is not None and to_worker:
        fields["workerTls"] = {
            "certFile": str(pki.client.cert_path),
            "keyFile": str(pki.client.key_path),
            "caFile": str(pki.ca.path),
        }
    return RouterProcessConfig.model_validate({**fields, "workers": [worker]})


async def _timed_post(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.post(url, json=_BODY) as reply:
        await reply.read()
        assert reply.status == 200, reply.status
    return time.perf_counter() - start


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))],
    }


async def _requests(pki: Pki, num_requests: int) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        plain_worker = await stack.enter_async_context(_serving(run_worker, _worker(None)))
        tls_worker = await stack.enter_async_context(_serving(run_worker, _worker(pki)))
        plain = await stack.enter_async_context(
            _serving(run_router, _router(plain_worker.grpc, None))
        )
        https = await stack.enter_async_context(
            _serving(run_router, _router(plain_worker.grpc, pki, to_worker=False))
        )
        tls = await stack.enter_async_context(_serving(run_router, _router(tls_worker.grpc, pki)))
        context = client_context(pki.ca.path)
        urls = {
            "plaintext": f"http://{plain.http_address}/v1/completions",
            "https_only": f"https://{https.http_address}/v1/completions",
            "tls": f"https://{tls.http_address}/v1/completions",
        }
        kept = {
            mode: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=1, ssl=False if mode == "plaintext" else context
                )
            )
            for mode in _MODES
        }
        samples: dict[str, list[float]] = {mode: [] for mode in _MODES}
        fresh: dict[str, list[float]] = {"plaintext": [], "tls": []}
        try:
            for i in range(_WARMUP + num_requests):
                for mode in _MODES:
                    elapsed = await _timed_post(kept[mode], urls[mode])
                    if i >= _WARMUP:
                        samples[mode].append(elapsed)
            for _ in range(num_requests // 4):
                for mode in ("plaintext", "tls"):
                    ssl_arg: ssl.SSLContext | bool = context if mode == "tls" else False
                    connector = aiohttp.TCPConnector(force_close=True, ssl=ssl_arg)
                    async with aiohttp.ClientSession(connector=connector) as session:
                        fresh[mode].append(await _timed_post(session, urls[mode]))
        finally:
            for session in kept.values():
                await session.close()
    kept_alive = {mode: _summary(values) for mode, values in samples.items()}
    new_connection = {mode: _summary(values) for mode, values in fresh.items()}
    return {
        "kept_alive": kept_alive,
        "kept_alive_https_adds_ms": kept_alive["https_only"]["median_ms"]
        - kept_alive["plaintext"]["median_ms"],
        "kept_alive_tls_adds_ms": kept_alive["tls"]["median_ms"]
        - kept_alive["plaintext"]["median_ms"],
        "new_connection": new_connection,
        "new_connection_tls_adds_ms": new_connection["tls"]["median_ms"]
        - new_connection["plaintext"]["median_ms"],
    }


async def _kv_pull_s(pki: Pki, size_mib: int, with_tls: bool, repeats: int = 3) -> float:
    num_blocks = size_mib * (1 << 20) // _BLOCK_BYTES
    key = KvAuthKey.generate()
    source, dest = KvArena(num_blocks, _BLOCK_BYTES), KvArena(num_blocks, _BLOCK_BYTES)
    exporter, importer = create_connector("tcp", {}), create_connector("tcp", {})

    def tls(cert: Any) -> KvTls | None:
        if not with_tls:
            return None
        files = TlsFiles(cert_file=cert.cert_path, key_file=cert.key_path, ca_file=pki.ca.path)
        return KvTls.from_files(files)

    await exporter.start(source, "p", auth_key=key, tls=tls(pki.server))
    await importer.start(dest, "d", auth_key=key, tls=tls(pki.client))
    blocks = list(range(num_blocks))
    times = []
    try:
        for i in range(repeats + 1):  # the first: a warm-up
            handle = exporter.describe(f"r{i}", blocks, num_tokens=num_blocks * 16)
            start = time.perf_counter()
            await importer.receive(handle, blocks, timeout_s=120)
            if i > 0:
                times.append(time.perf_counter() - start)
    finally:
        await importer.close()
        await exporter.close()
        source.close()
        dest.close()
    return statistics.median(times)


async def _main(num_requests: int, kv_mib: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="triskel-tls-bench-") as folder:
        pki = make_pki(Path(folder))
        result = await _requests(pki, num_requests)
        kv = {}
        for mode, with_tls in (("plaintext", False), ("tls", True)):
            seconds = await _kv_pull_s(pki, kv_mib, with_tls)
            kv[mode] = {"pull_ms": 1000 * seconds, "gbit_per_s": kv_mib * 8 / 1024 / seconds}
        result["kv_tcp_pull"] = {"size_mib": kv_mib, **kv}
        result["requests_per_mode"] = num_requests
        result["run_id"] = secrets.token_hex(4)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--kv-mib", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = asyncio.run(_main(args.requests, args.kv_mib))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key in ("kept_alive", "new_connection"):
        for mode, figures in result[key].items():
            print(
                f"{key:15} {mode:10} median {figures['median_ms']:7.3f} ms"
                f"  p90 {figures['p90_ms']:7.3f} ms"
            )
        if key == "kept_alive":
            print(f"{key:15} HTTPS alone adds {result[f'{key}_https_adds_ms']:+.3f} ms (median)")
        print(f"{key:15} TLS adds {result[f'{key}_tls_adds_ms']:+.3f} ms (median)")
    kv = result["kv_tcp_pull"]
    for mode in ("plaintext", "tls"):
        print(
            f"kv tcp pull {kv['size_mib']} MiB {mode:10} {kv[mode]['pull_ms']:8.1f} ms"
            f"  {kv[mode]['gbit_per_s']:6.2f} Gbit/s"
        )


if __name__ == "__main__":
    main()
