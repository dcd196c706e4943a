"""The LRU of evictable blocks: push order, removal from the middle, pushing again."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest

from triskel.workers.engine.eviction_queue import EvictionQueue


def test_pops_in_push_order_across_runs() -> None:
    queue = EvictionQueue(16)
    queue.push([7, 6, 5])
    queue.push([12, 11, 10])
    assert queue.num_blocks == 6
    # A pop may end inside a run and the next one resumes there.
    assert queue.pop(4) == [7, 6, 5, 12]
    assert queue.pop(2) == [11, 10]
    assert queue.num_blocks == 0


def test_a_removed_block_is_skipped() -> None:
    queue = EvictionQueue(16)
    queue.push([7, 6, 5])
    queue.push([12, 11, 10])
    queue.remove(6)  # a cache hit takes it back
    queue.remove(11)
    assert queue.num_blocks == 4
    assert queue.pop(3) == [7, 5, 12]
    assert queue.pop(1) == [10]


def test_a_block_pushed_again_leaves_from_its_new_place() -> None:
    queue = EvictionQueue(16)
    queue.push([1, 2, 3])
    queue.remove(1)
    queue.push([1])  # freed again: now the most recently freed
    assert queue.pop(3) == [2, 3, 1]


def test_refuses_blocks_it_does_not_hold() -> None:
    queue = EvictionQueue(16)
    queue.push([1, 2])
    with pytest.raises(ValueError, match="block 3 is not queued"):
        queue.remove(3)
    assert queue.pop(1) == [1]
    with pytest.raises(ValueError, match="block 1 is not queued"):
        queue.remove(1)  # popped already
    with pytest.raises(ValueError, match="count: 2 requested but only 1 queued"):
        queue.pop(2)


def test_a_grown_queue_takes_the_new_ids() -> None:
    queue = EvictionQueue(2)
    queue.push([1, 0])
    queue.grow(4)  # the pool grew (an EP group gained ranks)
    queue.push([3, 2])
    queue.remove(3)
    assert queue.pop(3) == [1, 0, 2]


@pytest.mark.parametrize("seed", range(5))
def test_orders_blocks_as_an_ordered_dict_would(seed: int) -> None:
    # The reference: an OrderedDict whose insertion order is the free order.
    rng = random.Random(seed)
    queue, reference = EvictionQueue(40), OrderedDict[int, None]()
    outside = list(range(40))
    for _ in range(500):
        action = rng.random()
        if action < 0.4 and outside:
            run = rng.sample(outside, rng.randrange(1, min(8, len(outside)) + 1))
            queue.push(list(run))
            for block_id in run:
                outside.remove(block_id)
                reference[block_id] = None
        elif action < 0.6 and reference:
            block_id = rng.choice(list(reference))
            queue.remove(block_id)
            del reference[block_id]
            outside.append(block_id)
        elif reference:
            count = rng.randrange(0, len(reference) + 1)
            expected = [reference.popitem(last=False)[0] for _ in range(count)]
            assert queue.pop(count) == expected
            outside.extend(expected)
        assert queue.num_blocks == len(reference)
