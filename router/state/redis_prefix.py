"""Approximate prefix history across router replicas in Redis.

    {prefix}:prefix:<worker id>:<block hash, 16 hex digits>   "1", expires after prefix_ttl_s

One key per (worker, block) lets Redis expire each record by itself. `record` sets
a prompt's keys in one pipeline; `match_lengths` is one script call that walks each
worker's leading blocks and stops at the first miss, so a lookup is one round trip
and costs the matched length, not workers x blocks. Block hashes are chained, so a
worker holding block i was sent every block before it (llm-d's approximate prefix
index, Dynamo's approximate mode). The script builds key names itself, which
standalone Redis allows (Redis Cluster would not).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from triskel.common.hashing import BlockHash
from triskel.router.state.config import StateConfig

# ARGV[1]: key prefix; ARGV[2]: number of workers n; ARGV[3..2+n]: worker ids;
# ARGV[3+n..]: block hashes. Returns the matched length per worker, in order.
_MATCH_LENGTHS_LUA = """
local num_workers = tonumber(ARGV[2])
local first_block = 3 + num_workers
local lengths = {}
for w = 1, num_workers do
  local head = ARGV[1] .. ARGV[2 + w] .. ':'
  local matched = 0
  for b = first_block, #ARGV do
    if redis.call('EXISTS', head .. ARGV[b]) == 0 then
      break
    end
    matched = matched + 1
  end
  lengths[w] = matched
end
return lengths
"""


def block_field(block_hash: BlockHash) -> str:
    return f"{block_hash:016x}"


class RedisPrefixHistory:
    """PrefixHistory over Redis; `redis` must decode responses to str."""

    def __init__(self, redis: Redis, config: StateConfig) -> None:
        self._redis = redis
        self._ttl_ms = round(config.prefix_ttl_s * 1000)
        self._key_prefix = f"{config.key_prefix}:prefix:"
        self._match_lengths = redis.register_script(_MATCH_LENGTHS_LUA)

    async def record(self, worker_id: str, block_hashes: Sequence[BlockHash]) -> None:
        if not block_hashes:
            return
        head = f"{self._key_prefix}{worker_id}:"
        async with self._redis.pipeline(transaction=False) as pipe:
            for block_hash in block_hashes:
                pipe.set(head + block_field(block_hash), 1, px=self._ttl_ms)
            await pipe.execute()

    async def match_lengths(
        self, block_hashes: Sequence[BlockHash], worker_ids: Sequence[str]
    ) -> list[int]:
        if not block_hashes or not worker_ids:
            return [0] * len(worker_ids)
        lengths: list[int] = await self._match_lengths(
            args=[
                self._key_prefix,
                len(worker_ids),
                *worker_ids,
                *(block_field(h) for h in block_hashes),
            ]
        )
        return [int(n) for n in lengths]
