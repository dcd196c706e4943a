"""The prefix cache's evictable blocks, least recently freed first (its LRU order).

Blocks join in runs (a finished request frees all its blocks at once) and leave
from the front in runs (an allocation evicts as many as it needs), so the queue
keeps runs of block ids rather than one linked node per block, as an OrderedDict
would: on 10k-token prompts its inserts and deletes dominated frees and
allocations. Every queued block holds a ticket, its place in the order of all
pushes. A block taken back out of the middle (a cache hit) gives its ticket up,
and the front skips that ticket when it gets there; pushed again, a block gets a
new ticket at the back.

    push([7, 6, 5]); push([12, 11, 10])   runs [7 6 5] [12 11 10], tickets 0..5
    remove(11)                             ticket 4 is given up
    pop(4) → [7, 6, 5, 12]; pop(1) → [10]  ticket 4 is skipped
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque

_NOT_QUEUED = -1


class EvictionQueue:
    """Block ids 0..num_blocks-1, each queued at most once."""

    __slots__ = (
        "_first_tickets",
        "_given_up",
        "_next_in_run",
        "_next_ticket",
        "_runs",
        "_ticket_of",
        "num_blocks",
    )

    def __init__(self, num_blocks: int) -> None:
        self._runs: deque[list[int]] = deque()
        self._first_tickets: deque[int] = deque()  # the ticket of each run's first entry
        self._next_in_run = 0  # entries of the front run already popped or skipped
        # The ticket of each block's last push; _NOT_QUEUED once removed. Popped blocks
        # keep theirs: tickets behind the front are no longer queued.
        self._ticket_of = array("q", [_NOT_QUEUED]) * num_blocks
        self._next_ticket = 0
        # Tickets given up by `remove` and not yet passed by the front (a min-heap).
        self._given_up: list[int] = []
        # How many blocks are queued (an attribute, not __len__: read before every allocation).
        self.num_blocks = 0

    def grow(self, num_blocks: int) -> None:
        """Makes room for block ids up to `num_blocks`-1 (a pool that grew)."""
        num_new = num_blocks - len(self._ticket_of)
        if num_new > 0:
            self._ticket_of.extend(array("q", [_NOT_QUEUED]) * num_new)

    def push(self, block_ids: list[int]) -> None:
        """Queues `block_ids` (none of them queued yet) at the back, in order.

        The queue keeps the list: do not change it afterwards.
        """
        if not block_ids:
            return
        ticket_of = self._ticket_of
        first = ticket = self._next_ticket
        for block_id in block_ids:
            ticket_of[block_id] = ticket
            ticket += 1
        self._runs.append(block_ids)
        self._first_tickets.append(first)
        self._next_ticket = ticket
        self.num_blocks += len(block_ids)

    def remove(self, block_id: int) -> None:
        """Takes a queued block out of the order (ValueError if it is not queued)."""
        ticket = self._ticket_of[block_id]
        if ticket == _NOT_QUEUED or ticket < self._front_ticket():
            raise ValueError(f"block_id: block {block_id} is not queued")
        self._ticket_of[block_id] = _NOT_QUEUED
        heapq.heappush(self._given_up, ticket)
        self.num_blocks -= 1

    def _front_ticket(self) -> int:
        """The ticket of the front entry; popped blocks hold older tickets."""
        if not self._runs:
            return self._next_ticket
        return self._first_tickets[0] + self._next_in_run

    def pop(self, count: int) -> list[int]:
        """Dequeues the `count` least recently queued blocks (ValueError if fewer are queued)."""
        if count > self.num_blocks:
            raise ValueError(f"count: {count} requested but only {self.num_blocks} queued")
        runs = self._runs
        given_up = self._given_up
        popped: list[int] = []
        index = self._next_in_run
        while count:
            run = runs[0]
            if index == len(run):
                runs.popleft()
                self._first_tickets.popleft()
                index = 0
                continue
            ticket = self._first_tickets[0] + index
            # `remove` only gives up tickets at or after the front, so none is behind it.
            if given_up and given_up[0] == ticket:
                heapq.heappop(given_up)
                index += 1  # removed from the middle: skip its entry
                continue
            # Every entry before the next given-up ticket is live: take them at once.
            num_taken = min(count, len(run) - index)
            if given_up:
                num_taken = min(num_taken, given_up[0] - ticket)
            popped += run[index : index + num_taken]
            index += num_taken
            count -= num_taken
        self._next_in_run = index
        self.num_blocks -= len(popped)
        return popped
