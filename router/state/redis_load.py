"""Load accounting across router replicas in Redis.

Each router owns one hash and is its only writer; values are absolute, so a write
that failed or arrived out of order is repaired by the next one (or the heartbeat):

    {prefix}:load:routers            SET   router ids that have published a share
    {prefix}:load:router:<router>    HASH  worker id -> "requests,prefill_tokens,decode_blocks"
                                           (whole key expires load_ttl_s after the last write)

`totals` runs one Lua script (one round trip) that reads every other live router's
entries for the asked workers and forgets routers whose hash has expired; this
router's own share comes from memory, so it is exact even when a write failed.
The script builds key names itself, which standalone Redis allows (Redis Cluster
would not).
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from triskel.router.state.config import StateConfig
from triskel.router.state.memory import MemoryLoadLedger
from triskel.router.state.protocols import LoadCounts

# KEYS[1]: routers set; ARGV[1]: router hash key prefix; ARGV[2]: own router id;
# ARGV[3..]: worker ids. Returns one HMGET reply per other live router.
_OTHER_SHARES_LUA = """
local shares = {}
for _, router in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if router ~= ARGV[2] then
    local key = ARGV[1] .. router
    if redis.call('EXISTS', key) == 1 then
      shares[#shares + 1] = redis.call('HMGET', key, unpack(ARGV, 3))
    else
      redis.call('SREM', KEYS[1], router)
    end
  end
end
return shares
"""


def encode_counts(counts: LoadCounts) -> str:
    return f"{counts.num_requests},{counts.num_prefill_tokens},{counts.num_decode_blocks}"


def decode_counts(raw: str) -> LoadCounts:
    num_requests, num_prefill_tokens, num_decode_blocks = (int(part) for part in raw.split(","))
    return LoadCounts(num_requests, num_prefill_tokens, num_decode_blocks)


class RedisLoadLedger:
    """LoadLedger over Redis; `redis` must decode responses to str (see `connect_redis`).

    `own_share` holds this router's counts and is updated before any network call,
    so it stays exact through Redis failures and `heartbeat` can republish it whole.
    """

    def __init__(
        self,
        redis: Redis,
        router_id: str,
        config: StateConfig,
        own_share: MemoryLoadLedger | None = None,
    ) -> None:
        if not router_id:
            raise ValueError("RedisLoadLedger: router_id must not be empty")
        self.own_share = own_share or MemoryLoadLedger()
        self._redis = redis
        self._router_id = router_id
        self._ttl_ms = round(config.load_ttl_s * 1000)
        self._routers_key = f"{config.key_prefix}:load:routers"
        self._router_key_prefix = f"{config.key_prefix}:load:router:"
        self._own_key = self._router_key_prefix + router_id
        self._other_shares = redis.register_script(_OTHER_SHARES_LUA)

    async def add(self, worker_id: str, delta: LoadCounts) -> None:
        self.own_share.apply(worker_id, delta)
        await self.publish(worker_id)

    async def publish(self, worker_id: str) -> None:
        """Writes this router's current counts for `worker_id` and renews the share's TTL."""
        counts = self.own_share.get(worker_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            if counts.is_zero:
                pipe.hdel(self._own_key, worker_id)
            else:
                pipe.hset(self._own_key, worker_id, encode_counts(counts))
            pipe.pexpire(self._own_key, self._ttl_ms)
            pipe.sadd(self._routers_key, self._router_id)
            await pipe.execute()

    async def totals(self, worker_ids: Sequence[str]) -> dict[str, LoadCounts]:
        unique_ids = list(dict.fromkeys(worker_ids))
        totals = self.own_share.snapshot(unique_ids)
        if not unique_ids:
            return totals
        shares: list[list[str | None]] = await self._other_shares(
            keys=[self._routers_key],
            args=[self._router_key_prefix, self._router_id, *unique_ids],
        )
        for share in shares:
            for worker_id, raw in zip(unique_ids, share, strict=True):
                if raw is not None:
                    totals[worker_id] = totals[worker_id] + decode_counts(raw)
        return totals

    async def heartbeat(self) -> None:
        """Replaces this router's whole share with its exact counts and renews the TTL."""
        shares: dict[FieldT, EncodableT] = {
            worker_id: encode_counts(counts)
            for worker_id, counts in self.own_share.nonzero().items()
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._own_key)
            if shares:
                pipe.hset(self._own_key, mapping=shares)
                pipe.pexpire(self._own_key, self._ttl_ms)
            pipe.sadd(self._routers_key, self._router_id)
            await pipe.execute()
