"""One /metrics for sibling processes: the first adds the others' counters to its own.

Every other process sends its exposition to the first once a second (`METRICS`
frames); when scraped, the first sums, sample by sample, counters and histograms and the
gauges that count per-process work (queued, in flight, held), and keeps its own value
for gauges every process reads alike (workers, stage queues the workers report). A
sibling's part is at most a second old; when it restarts its counters start again from
zero, which Prometheus' `rate()` reads as a counter reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from triskel.router.siblings import frames
from triskel.router.siblings.bus import SiblingBus

# Gauges of work each process holds: the router's is their sum.
SUMMED_GAUGES = frozenset(
    {
        "triskel_admission_queue_depth",
        "triskel_admission_in_flight_requests",
        "triskel_inflight_requests",
        "triskel_router_held_prefills",
    }
)
_SUMMED_TYPES = frozenset({"counter", "histogram", "summary"})
SEND_INTERVAL_S = 1.0


class _Key(NamedTuple):
    name: str
    labels: frozenset[tuple[str, str]]


def merged(own: Iterable[Metric], siblings: Iterable[str]) -> list[Metric]:
    """`own` families with each sibling exposition's samples added where they sum
    (pure: the families are copied, not changed)."""
    families = {f.name: _copy(f) for f in own}
    for text in siblings:
        for family in text_string_to_metric_families(text):
            mine = families.get(family.name)
            if mine is None or mine.type != family.type:
                continue  # a family this process does not export: not ours to add
            if family.type not in _SUMMED_TYPES and family.name not in SUMMED_GAUGES:
                continue
            _add(mine, family.samples)
    return list(families.values())


def render(own: CollectorRegistry, siblings: Iterable[str]) -> bytes:
    """The exposition of `merged`."""
    return generate_latest(_Fixed(merged(own.collect(), siblings)))


def _add(mine: Metric, samples: Iterable[Sample]) -> None:
    at = {_Key(s.name, frozenset(s.labels.items())): i for i, s in enumerate(mine.samples)}
    for sample in samples:
        if sample.name.endswith("_created"):
            continue  # a creation time, not a count: the first process's stands
        index = at.get(_Key(sample.name, frozenset(sample.labels.items())))
        if index is None:
            at[_Key(sample.name, frozenset(sample.labels.items()))] = len(mine.samples)
            mine.samples.append(Sample(sample.name, sample.labels, sample.value))
        else:
            ours = mine.samples[index]
            mine.samples[index] = ours._replace(value=ours.value + sample.value)


def _copy(family: Metric) -> Metric:
    copied = Metric(family.name, family.documentation, family.type, family.unit)
    copied.samples = list(family.samples)
    return copied


class _Fixed:
    """What `generate_latest` reads: families already collected."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class SiblingExpositions:
    """The first process's copy of each other process's latest exposition."""

    def __init__(self, bus: SiblingBus) -> None:
        self._texts: dict[int, str] = {}
        bus.on_metrics(self._told)
        bus.on_gone(self._gone)

    def texts(self) -> list[str]:
        return list(self._texts.values())

    def _told(self, sibling: int, text: str) -> None:
        self._texts[sibling] = text

    def _gone(self, sibling: int) -> None:
        self._texts.pop(sibling, None)


async def send_expositions(bus: SiblingBus, registry: CollectorRegistry) -> None:
    """Sends this process's exposition to the first process, every `SEND_INTERVAL_S`."""
    while True:
        await asyncio.sleep(SEND_INTERVAL_S)
        bus.send_to(0, frames.metrics(generate_latest(registry)))
