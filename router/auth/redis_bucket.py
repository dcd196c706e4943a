"""The token buckets in Redis: one hash per principal, changed only by one Lua script.

The script runs atomically on the server (EVALSHA, loaded once), so router replicas
sharing a Redis draw from the same buckets without a lock or a read-modify-write
race, and it reads Redis' own clock, so replicas' clocks need not agree. It mirrors
`bucket.take`, leases included; tests run both on the same cases.

    triskel:ratelimit:<bucket>  hash  {requests: level, tokens: level, at: seconds}
                                expires once every bucket would be full again
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from triskel.router.auth.bucket import ALLOWED, Amount, Verdict
from triskel.router.auth.errors import LimitName

KEY_PREFIX = "triskel:ratelimit:"

# ARGV: for each limit, its name, per-minute allowance, this request's cost and lease.
# Returns {1, name, leased, ...} when taken, {0, name, wait seconds} when refused; numbers
# as strings (Lua numbers come back from Redis truncated to integers).
_TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
local elapsed = math.max(0, now - at)
local levels = {}
local wait, short = 0, nil
for i = 1, #ARGV, 4 do
  local full = tonumber(ARGV[i + 1])
  local cost = tonumber(ARGV[i + 2])
  local rate = full / 60
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  local level = full
  if stored then level = math.min(full, tonumber(stored) + elapsed * rate) end
  levels[i] = level
  local need = math.min(cost, full)
  if cost > 0 and level < need and (need - level) / rate > wait then
    wait = (need - level) / rate
    short = ARGV[i]
  end
end
if short then return {0, short, tostring(wait)} end
local reply = {1}
local refill = 0
for i = 1, #ARGV, 4 do
  local full = tonumber(ARGV[i + 1])
  local level = levels[i] - tonumber(ARGV[i + 2])
  local leased = math.min(tonumber(ARGV[i + 3]), math.max(0, level))
  if leased > 0 then
    reply[#reply + 1] = ARGV[i]
    reply[#reply + 1] = tostring(leased)
  end
  level = level - leased
  redis.call('HSET', KEYS[1], ARGV[i], tostring(level))
  refill = math.max(refill, (full - level) / (full / 60))
end
redis.call('HSET', KEYS[1], 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(refill * 1000) + 1000)
return reply
"""


class RedisBuckets:
    """`take` against the shared buckets; Redis errors propagate (the caller falls back)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_TAKE)

    async def take(self, bucket: str, amounts: Sequence[Amount]) -> Verdict:
        args: list[str | int | float] = []
        for amount in amounts:
            args += [amount.limit, amount.per_minute, amount.cost, amount.lease]
        reply = cast(list[object], await self._script(keys=[KEY_PREFIX + bucket], args=args))
        if int(cast(int, reply[0])) == 1:
            if len(reply) == 1:
                return ALLOWED
            pairs = zip(reply[1::2], reply[2::2], strict=True)
            leased = {cast(LimitName, _text(name)): float(_text(value)) for name, value in pairs}
            return Verdict(True, leased=leased)
        limit = cast(LimitName, _text(reply[1]))
        return Verdict(False, limit, float(_text(reply[2])))

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
