"""A tcp KV pull between two connectors in this process, plaintext (zero-copy) or over
mutual TLS: what TLS costs the KV control channel's tcp transfers (security_cost.py)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from triskel.common.tls import TlsFiles
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.registry import create_connector

from support.tls_certs import Pki

_BLOCK_BYTES = 1 << 20


async def kv_pull_s(pki: Pki, size_mib: int, with_tls: bool, repeats: int = 3) -> float:
    """The median seconds of `repeats` pulls of `size_mib` MiB, after one warm-up."""
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
