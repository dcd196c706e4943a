"""Signal plugins: each reads one aspect of a request and says which facts hold.

One plugin per folder (code, README, its own test), built by type name from YAML
through `SignalRegistry`, like the scheduling plugins.
"""
