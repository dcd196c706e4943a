"""Workload traces: what `triskel simulate` and `triskel bench` replay.

Every source (Mooncake JSONL, Azure CSV, a seeded synthetic spec) becomes one
`Trace` of `TraceRequest`s sorted by arrival; `prompt_token_ids` turns a request
into deterministic token ids whose shared prefix blocks hash alike.
"""

from triskel.traces.errors import TraceError
from triskel.traces.loading import load_trace
from triskel.traces.prompt_tokens import prompt_token_ids
from triskel.traces.synthetic import ArrivalProcess, SyntheticSpec, synthetic_trace
from triskel.traces.types import Trace, TraceRequest

__all__ = [
    "ArrivalProcess",
    "SyntheticSpec",
    "Trace",
    "TraceError",
    "TraceRequest",
    "load_trace",
    "prompt_token_ids",
    "synthetic_trace",
]
