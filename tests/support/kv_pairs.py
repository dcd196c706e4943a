"""An exporter and an importer of one KV connector type, each with its own arena: the
pair that connector tests (the contract, the pull checks) pull blocks across."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvConnector
from triskel.workers.kv.registry import create_connector


@dataclass
class ConnectorPair:
    exporter: KvConnector
    importer: KvConnector
    source: KvArena
    dest: KvArena
    done: list[str]
    """The request ids the exporter reported done, in order."""

    def source_block(self, block_id: int) -> bytes:
        return read_block(self.source, block_id)

    def dest_block(self, block_id: int) -> bytes:
        return read_block(self.dest, block_id)


def read_block(arena: KvArena, block_id: int) -> bytes:
    with arena.view(block_id) as view:
        return bytes(view)


@contextlib.asynccontextmanager
async def connector_pair(
    connector_type: str,
    *,
    num_blocks: int,
    block_bytes: int,
    seed_base: int,
    auth_key: KvAuthKey | None = None,
) -> AsyncIterator[ConnectorPair]:
    """A started pair: source block i is filled from seed `seed_base + i`, the
    destination is empty; with `auth_key`, both ends hold it (pulls need it)."""
    source, dest = KvArena(num_blocks, block_bytes), KvArena(num_blocks, block_bytes)
    for block_id in range(num_blocks):
        source.fill_block(block_id, seed_base + block_id)
    exporter = create_connector(connector_type, {})
    importer = create_connector(connector_type, {})
    await exporter.start(source, "prefill-0", auth_key=auth_key)
    await importer.start(dest, "decode-0", auth_key=auth_key)
    done: list[str] = []
    exporter.on_export_done(done.append)
    try:
        yield ConnectorPair(exporter, importer, source, dest, done)
    finally:
        await importer.close()
        await exporter.close()
        source.close()
        dest.close()
