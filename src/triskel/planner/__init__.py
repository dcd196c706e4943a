"""The autoscaling planner: how many replicas each stage of a serving graph needs.

Pure code with no I/O (docs/autoscaling.md): the operator, `triskel up` and the
simulator call the same functions with what they observed and act on the records
they return.

    sizing.py       replicas for a TTFT / TPOT SLO at a load (queueing models)
    predictors.py   the next interval's load from its history (EWMA, Holt)
    router_metrics.py  what was observed, from two scrapes of the router's /metrics
    laws/           other projects' laws, for comparison
    planner.py      Triskel's law: sizing + burst fast path, hysteresis, cooldowns,
                    consolidation-aware scale-down, min / max, GPU budget
"""
