"""Role switching: when one stage of a P/D graph grows while the other has replicas to
spare, move replicas between them (drain, switch role, rejoin) instead of starting new
ones from cold. Pure: the planner calls it on its own decisions.

A replica can change role when both pools run the same profile (same model, same
hardware). A switch costs the drain plus `role_switch_s` (the worker re-registers in
its new role; no weights load), a cold start the profile's `startup_s`: switching is
chosen only when it is the cheaper. The donor gives only what it can spare: replicas
above what it needs for the load with the planner's headroom (`replicas_with_headroom`
in its decision), even while its own scale-down window is still running (the window
guards against releasing GPUs too early; a switch keeps the GPU busy).
"""

from __future__ import annotations

from dataclasses import replace

from triskel.planner.planner import Decision, StageSpec


def with_role_switches(
    decisions: tuple[Decision, ...], stages: tuple[StageSpec, ...], role_switch_s: float
) -> tuple[Decision, ...]:
    """The decisions, with `switched_in` / `switched_out` set where growth is covered by
    another stage's spare replicas; `desired` counts stay the same targets."""
    specs = {spec.name: spec for spec in stages}
    result = {d.stage: d for d in decisions}
    for grow in decisions:
        growth = grow.desired - grow.current
        if growth <= 0 or specs[grow.stage].role not in ("prefill", "decode"):
            continue
        for donor in decisions:
            spec, donor_spec = specs[grow.stage], specs[donor.stage]
            if donor.stage == grow.stage or donor_spec.role == spec.role:
                continue
            if donor_spec.profile != spec.profile or role_switch_s >= spec.profile.startup_s:
                continue
            current = result[donor.stage]
            spare = _spare(current)
            count = min(growth, spare)
            if count <= 0:
                continue
            result[donor.stage] = replace(
                current,
                desired=min(current.desired, current.current - current.switched_out - count),
                switched_out=current.switched_out + count,
                # The count falls for the switch, whatever the stage's own reason was.
                reason=f"switch: {count} to {grow.stage} ({current.reason})",
            )
            receiver = result[grow.stage]
            result[grow.stage] = replace(
                receiver,
                switched_in=receiver.switched_in + count,
                switched_from=donor.stage,
                reason=(
                    f"{receiver.reason}; {count} switched from {donor.stage} "
                    f"({role_switch_s:.0f} s, not a {spec.profile.startup_s:.0f} s cold start)"
                ),
            )
            growth -= count
    return tuple(result[d.stage] for d in decisions)


def _spare(decision: Decision) -> int:
    """Replicas the donor can give: above its count with headroom, or its own cut."""
    with_headroom = decision.numbers.get("replicas_with_headroom")
    floor = decision.desired
    if isinstance(with_headroom, (int, float)):
        floor = min(floor, int(with_headroom))
    return max(0, decision.current - decision.switched_out - max(floor, 0))
