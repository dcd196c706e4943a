"""A vLLM worker's load, read from its Prometheus `/metrics` text. Pure, no I/O.

vLLM (V1) exports one sample per engine (`engine="0"`, one per data-parallel rank);
the router wants the worker's total, so samples of one name are summed, except the
KV usage fraction, which is averaged. Only the few lines the router needs are
parsed: a scrape every 50 ms per worker must stay cheap.
"""

from __future__ import annotations

from collections import defaultdict

from triskel.router.scheduling.types import WorkerLoad

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
# Before vLLM 0.10 the same fraction had this name.
KV_USAGE_LEGACY = "vllm:gpu_cache_usage_perc"
CACHE_CONFIG = "vllm:cache_config_info"
_WANTED = (RUNNING, WAITING, KV_USAGE, KV_USAGE_LEGACY)


class MetricsFormatError(ValueError):
    """The text lacks the gauges a vLLM worker exports; the message says which."""


def parse_load(text: str, num_kv_blocks: int = 0) -> WorkerLoad:
    """The load in `text`; MetricsFormatError when the request gauges are missing."""
    values: dict[str, list[float]] = defaultdict(list)
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name, value = _sample(line)
        if name in _WANTED:
            values[name].append(value)
        elif name == CACHE_CONFIG and not num_kv_blocks:
            num_kv_blocks = _label_int(line, "num_gpu_blocks")
    missing = [name for name in (RUNNING, WAITING) if name not in values]
    if missing:
        raise MetricsFormatError(f"/metrics has no {' or '.join(missing)}")
    usage = values.get(KV_USAGE) or values.get(KV_USAGE_LEGACY) or [0.0]
    return WorkerLoad(
        num_waiting_requests=round(sum(values[WAITING])),
        num_running_requests=round(sum(values[RUNNING])),
        kv_usage=sum(usage) / len(usage),
        num_kv_blocks=num_kv_blocks,
    )


def _sample(line: str) -> tuple[str, float]:
    """`name{labels} value [timestamp]` → (name, value)."""
    end_of_name = line.find("{")
    if end_of_name < 0:
        name, _, rest = line.partition(" ")
    else:
        name = line[:end_of_name]
        rest = line[line.rindex("}") + 1 :]
    fields = rest.split()
    try:
        return name, float(fields[0])
    except (IndexError, ValueError):
        raise MetricsFormatError(f"/metrics line {line!r} has no value") from None


def _label_int(line: str, label: str) -> int:
    marker = f'{label}="'
    start = line.find(marker)
    if start < 0:
        return 0
    start += len(marker)
    value = line[start : line.find('"', start)]
    return int(value) if value.isdigit() else 0
