"""`triskel simulate`: a discrete-event simulation of a cluster running Triskel's own code.

The mock engine's core (scheduler, block pool, latency model) runs each instance on
a virtual clock, and the router's scheduling plugins pick the instances, so what
is measured here is what the router and workers actually run.
"""
