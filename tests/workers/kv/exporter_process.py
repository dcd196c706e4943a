"""A KV exporter in its own process, for tests whose bytes must cross processes.

    KV_AUTH_KEY_FILE=key python exporter_process.py CONNECTOR NUM_BLOCKS BLOCK_BYTES SEED_BASE ID...

Fills block i with seed SEED_BASE + i, exports every block (in reverse order, so
exporter and importer block ids differ) once per REQUEST_ID, and prints one line
per handle: `handle <JSON of the KvHandle proto>`. Prints `done <request_id>` when
a pull completes, and exits when stdin closes. Its capabilities are signed with the
key in KV_AUTH_KEY_FILE, which the importer must hold too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from google.protobuf import json_format

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.registry import create_connector


def emit(line: str) -> None:
    print(line, flush=True)


async def serve(
    connector_type: str, num_blocks: int, block_bytes: int, seed_base: int, ids: list[str]
) -> None:
    arena = KvArena(num_blocks, block_bytes)
    for block_id in range(num_blocks):
        arena.fill_block(block_id, seed_base + block_id)
    connector = create_connector(connector_type, {})
    key = KvAuthKey.from_file(os.environ["KV_AUTH_KEY_FILE"])
    await connector.start(arena, "exporter-process", auth_key=key)
    connector.on_export_done(lambda request_id: emit(f"done {request_id}"))
    for request_id in ids:
        handle = connector.describe(request_id, list(reversed(range(num_blocks))), num_blocks)
        emit("handle " + json.dumps(json_format.MessageToDict(handle.to_proto())))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # returns at EOF
    await connector.close()
    arena.close()


if __name__ == "__main__":
    connector_arg, num_blocks_arg, block_bytes_arg, seed_base_arg, *request_ids = sys.argv[1:]
    asyncio.run(
        serve(
            connector_arg,
            int(num_blocks_arg),
            int(block_bytes_arg),
            int(seed_base_arg),
            request_ids,
        )
    )
