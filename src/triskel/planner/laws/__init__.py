"""Other projects' scaling laws, re-implemented from their published behaviour for
side-by-side comparison with Triskel's planner (each module cites its source, version
and defaults). Each is a pure `step(state, observation) -> (state, decisions)` with the
planner's own observation and decision types, so the simulator drives them alike.
"""
