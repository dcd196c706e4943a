"""The mock engine core: a continuous-batching scheduler over a paged, prefix-cached
KV block pool, with modelled step latencies. Pure and synchronous: no I/O, no clock.

Entry point: `triskel.workers.engine.core.EngineCore`.
"""
