"""The KV relay's Redis side: key layout, scripts, and stream entries as typed values.

    {prefix}:kv:lease:<worker>            STRING  the holder's router id; expires
                                                  kv_lease_ttl_s after its last renewal
    {prefix}:kv:events:<worker>           STREAM  {prev, batch: KvEventBatch bytes}, or
                                                  {prev, lost} when the holder lost the worker
    {prefix}:kv:snapshot:<worker>         HASH    id: entry id of the newest snapshot,
                                                  batch: its bytes
    {prefix}:kv:snapshot-wanted:<worker>  STRING  a replica lost its place: the holder
                                                  resubscribes for a fresh snapshot

Appends go through one script that checks the lease first, so a holder that lost
it (after a long pause, say) cannot interleave a stale subscription's batches, and
that records the id of the entry before (`prev`): a reader whose last id is not
`prev` missed entries (trimmed away, or lost with a restarted Redis), whatever the
event ids say. Claiming renews held leases, takes free ones and consumes snapshot
requests for held workers, all workers in one call. The client must return bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.typing import KeyT, StreamIdT

from triskel.router.state.config import StateConfig
from triskel.v1 import worker_pb2

# KEYS[1..n]: leases, KEYS[n+1..2n]: snapshot requests; ARGV[1]: router id, ARGV[2]: TTL ms.
# Per worker: 0 held by another replica, 1 held by us, 2 held by us and a snapshot is wanted.
_CLAIM_LUA = """
local n = #KEYS / 2
local claims = {}
for i = 1, n do
  local holder = redis.call('GET', KEYS[i])
  if not holder then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    holder = ARGV[1]
  elseif holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
  if holder == ARGV[1] then
    claims[i] = 1 + redis.call('DEL', KEYS[n + i])
  else
    claims[i] = 0
  end
end
return claims
"""
# KEYS: leases; ARGV[1]: router id. Deletes only the leases this router holds.
_RELEASE_LUA = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
  end
end
"""
# KEYS[1]: lease, KEYS[2]: stream, KEYS[3]: snapshot; ARGV[1]: router id, ARGV[2]: max length,
# ARGV[3]: field ('batch' or 'lost'), ARGV[4]: value, ARGV[5]: '1' for a snapshot batch.
# Returns the new entry id, or nil when the lease is not ours.
_APPEND_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local prev = '0-0'
if #last > 0 then
  prev = last[1][1]
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'prev', prev, ARGV[3], ARGV[4])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[3], 'id', id, 'batch', ARGV[4])
end
return id
"""
# The position before a stream's first entry.
STREAM_START = "0-0"


@dataclass(frozen=True, slots=True)
class RelayEntry:
    """One stream entry: a worker's batch, or `batch` None when the holder lost the worker."""

    entry_id: str
    prev_id: str
    batch: worker_pb2.KvEventBatch | None


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """The newest snapshot of a worker and the id of its entry in the worker's stream."""

    entry_id: str
    batch: worker_pb2.KvEventBatch


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    is_held: bool
    is_snapshot_wanted: bool = False


def is_after(entry_id: str, other_id: str) -> bool:
    """True when stream entry `entry_id` comes after `other_id` ("<ms>-<seq>" ids)."""
    return _parse(entry_id) > _parse(other_id)


def _parse(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class KvRelayStore:
    """The relay's Redis calls for one router replica; `redis` must return bytes."""

    def __init__(self, redis: Redis, router_id: str, config: StateConfig) -> None:
        if not router_id:
            raise ValueError("KvRelayStore needs a non-empty router_id")
        self._redis = redis
        self._router_id = router_id
        self._head = f"{config.key_prefix}:kv:"
        self._lease_ttl_ms = round(config.kv_lease_ttl_s * 1000)
        self._max_entries = config.kv_stream_maxlen
        self._claim = redis.register_script(_CLAIM_LUA)
        self._release = redis.register_script(_RELEASE_LUA)
        self._append = redis.register_script(_APPEND_LUA)

    def key(self, kind: str, worker_id: str) -> str:
        """`kind` is lease, events, snapshot or snapshot-wanted (see the module docstring)."""
        return f"{self._head}{kind}:{worker_id}"

    async def claim(self, worker_ids: Sequence[str]) -> dict[str, LeaseClaim]:
        """Takes or renews each worker's lease where no other replica holds it."""
        if not worker_ids:
            return {}
        keys = [self.key("lease", w) for w in worker_ids]
        keys += [self.key("snapshot-wanted", w) for w in worker_ids]
        codes: list[int] = await self._claim(keys=keys, args=[self._router_id, self._lease_ttl_ms])
        return {
            worker_id: LeaseClaim(is_held=code > 0, is_snapshot_wanted=code == 2)
            for worker_id, code in zip(worker_ids, codes, strict=True)
        }

    async def release(self, worker_ids: Sequence[str]) -> None:
        """Gives up the leases this replica holds among `worker_ids` (others take over at once)."""
        if worker_ids:
            await self._release(
                keys=[self.key("lease", w) for w in worker_ids], args=[self._router_id]
            )

    async def append(self, worker_id: str, batch: worker_pb2.KvEventBatch | None) -> bool:
        """Appends `batch` (None: the worker was lost) to its stream; False if not the holder."""
        field, value = ("lost", b"1") if batch is None else ("batch", batch.SerializeToString())
        is_snapshot = batch is not None and batch.is_snapshot
        entry_id = await self._append(
            keys=[
                self.key("lease", worker_id),
                self.key("events", worker_id),
                self.key("snapshot", worker_id),
            ],
            args=[self._router_id, self._max_entries, field, value, "1" if is_snapshot else "0"],
        )
        return entry_id is not None

    async def want_snapshot(self, worker_id: str) -> None:
        """Asks the holder for a fresh snapshot (it resubscribes on its next renewal)."""
        await self._redis.set(self.key("snapshot-wanted", worker_id), 1, px=self._lease_ttl_ms)

    async def snapshots(self, worker_ids: Sequence[str]) -> dict[str, StoredSnapshot | None]:
        """The newest stored snapshot per worker (None where no holder wrote one yet)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for worker_id in worker_ids:
                pipe.hmget(self.key("snapshot", worker_id), ["id", "batch"])
            replies: list[list[bytes | None]] = await pipe.execute()
        snapshots: dict[str, StoredSnapshot | None] = {}
        for worker_id, (raw_id, raw_batch) in zip(worker_ids, replies, strict=True):
            snapshots[worker_id] = (
                None
                if raw_id is None or raw_batch is None
                else StoredSnapshot(raw_id.decode(), worker_pb2.KvEventBatch.FromString(raw_batch))
            )
        return snapshots

    async def read(
        self, positions: Mapping[str, str], block_s: float, max_entries: int
    ) -> dict[str, list[RelayEntry]]:
        """Entries after each worker's position, waiting up to `block_s` for the first."""
        if not positions:
            return {}
        by_key = {self.key("events", w): w for w in positions}
        streams: dict[KeyT, StreamIdT] = {
            self.key("events", w): position for w, position in positions.items()
        }
        reply = await self._redis.xread(
            streams, count=max_entries, block=max(1, round(block_s * 1000))
        )
        entries: dict[str, list[RelayEntry]] = {}
        for raw_key, raw_entries in _by_stream(reply):
            worker_id = by_key[_text(raw_key)]
            entries[worker_id] = [_entry(raw_id, fields) for raw_id, fields in raw_entries]
        return entries

    async def ping(self) -> bool:
        return bool(await self._redis.ping())


def _by_stream(reply: object) -> list[tuple[object, list[tuple[object, Mapping[bytes, bytes]]]]]:
    """(stream key, entries) pairs from an XREAD reply: a list (RESP2), or a dict (RESP3)."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(key, list(entries)) for key, entries in cast(Iterable[Any], pairs)]


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _entry(raw_id: object, fields: Mapping[bytes, bytes]) -> RelayEntry:
    raw_batch = fields.get(b"batch")
    return RelayEntry(
        entry_id=_text(raw_id),
        prev_id=_text(fields[b"prev"]),
        batch=None if raw_batch is None else worker_pb2.KvEventBatch.FromString(raw_batch),
    )
