"""KV transfer between workers: the arena, handles, and the connectors.

- `arena`: a worker's KV memory (`KvArena`, `kv_block_bytes`).
- `handle`: `KvHandle`, what a decode worker needs to pull a prompt's KV.
- `connector`: the `KvConnector` interface and `KvTransferError`.
- `registry`: `create_connector(type_name, params)`.
- `control`, `exports`, `pull_checks`, `base`: what every connector shares (the
  control channel, export bookkeeping, pure pull checks, the connector shell).
- `tcp`, `mooncake`, `nccl` (+ `torch_p2p`): the data planes.
"""
