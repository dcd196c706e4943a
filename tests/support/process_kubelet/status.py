"""A pod's status as its containers make it, and writing it to the API server.

`pod_status` is pure: the containers' states in, the `status` a kubelet would write
out. The phase is Pending until every container has started once, Running while any
runs or will restart, Succeeded or Failed once all ended for good (by exit codes).
Conditions: PodScheduled (kept as the binding set it), Initialized (no init
containers: at once), ContainersReady (every container ready) and Ready
(ContainersReady and every readiness gate's condition True). A condition's
lastTransitionTime changes only when its status does.

`StatusReporter` writes the status (merge patch on `pods/status`) whenever the
containers change, skipping writes that would change nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from .api import ApiClient, ApiError, Json
from .container import ContainerState, Terminated, now_rfc3339

log = logging.getLogger(__name__)
OWN_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
_RETRY_S = 0.5


@dataclass(frozen=True, slots=True)
class PodPlace:
    """Where a pod runs: its node's IP, its own IP, and since when."""

    host_ip: str
    pod_ip: str
    start_time: str


def pod_status(
    pod: Json,
    place: PodPlace | None,
    containers: Sequence[ContainerState],
    previous: Mapping[str, Json],
) -> Json:
    """The status of `pod`; `previous` holds the conditions last written, by type (their
    transition times carry over), and those of other writers (readiness gates)."""
    unready = [c.name for c in containers if not c.ready]
    containers_ready = not unready and bool(containers)
    gates = [g["conditionType"] for g in pod["spec"].get("readinessGates", [])]
    gates_open = all(previous.get(gate, {}).get("status") == "True" for gate in gates)
    not_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    own = [
        _condition(previous, "PodScheduled", True),
        _condition(previous, "Initialized", True),
        _condition(
            previous, "ContainersReady", containers_ready, "ContainersNotReady", not_ready_message
        ),
        _condition(
            previous,
            "Ready",
            containers_ready and gates_open,
            "ContainersNotReady" if not containers_ready else "ReadinessGatesNotReady",
            not_ready_message if not containers_ready else f"gates {gates} not all True",
        ),
    ]
    status: Json = {
        "phase": _phase(containers),
        "conditions": own + [c for t, c in previous.items() if t not in OWN_CONDITIONS],
        "containerStatuses": [_container_status(c) for c in containers],
    }
    if place is not None:
        status |= {
            "hostIP": place.host_ip,
            "podIP": place.pod_ip,
            "podIPs": [{"ip": place.pod_ip}],
            "startTime": place.start_time,
        }
    return status


def _phase(containers: Sequence[ContainerState]) -> str:
    if containers and all(c.terminated is not None for c in containers):
        failed = any(c.terminated is not None and c.terminated.exit_code != 0 for c in containers)
        return "Failed" if failed else "Succeeded"
    has_run = [c.running_since or c.last_terminated or c.terminated for c in containers]
    return "Running" if containers and all(has_run) else "Pending"


def _condition(
    previous: Mapping[str, Json], kind: str, is_true: bool, reason: str = "", message: str = ""
) -> Json:
    status = "True" if is_true else "False"
    before = previous.get(kind, {})
    condition: Json = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": (
            before.get("lastTransitionTime") if before.get("status") == status else None
        )
        or now_rfc3339(),
    }
    if not is_true:
        condition |= {"reason": reason, "message": message}
    return condition


def _container_status(state: ContainerState) -> Json:
    status: Json = {
        "name": state.name,
        "image": state.image,
        "imageID": "",
        "ready": state.ready,
        "started": state.started,
        "restartCount": state.restart_count,
        "state": _state(state),
        "lastState": {} if state.last_terminated is None else _ended(state.last_terminated),
    }
    if state.pid is not None:
        status["containerID"] = f"process://{state.pid}"
    return status


def _state(state: ContainerState) -> Json:
    if state.running_since is not None:
        return {"running": {"startedAt": state.running_since}}
    if state.terminated is not None:
        return _ended(state.terminated)
    reason, message = state.waiting or ("ContainerCreating", "")
    return {"waiting": {"reason": reason, "message": message} if message else {"reason": reason}}


def _ended(terminated: Terminated) -> Json:
    ended: Json = {
        "exitCode": terminated.exit_code,
        "reason": terminated.reason,
        "startedAt": terminated.started_at,
        "finishedAt": terminated.finished_at,
    }
    if terminated.message:
        ended["message"] = terminated.message
    return {"terminated": ended}


class StatusReporter:
    """Writes `build()` to the pod's status whenever `changed()` was called."""

    def __init__(self, api: ApiClient, pod_path: str, build: Callable[[], Json]) -> None:
        self._api = api
        self._path = f"{pod_path}/status"
        self._build = build
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._sent = ""

    def changed(self) -> None:
        self._dirty.set()

    async def run_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not await self.flush():
                await asyncio.sleep(_RETRY_S)  # the server was busy or away: try again soon
                self._dirty.set()

    async def flush(self) -> bool:
        """Writes the current status now unless already written; False when that failed."""
        async with self._lock:
            status = self._build()
            text = json.dumps(status, sort_keys=True)
            if text == self._sent:
                return True
            try:
                await self._api.merge_patch(self._path, {"status": status})
            except ApiError as error:
                if error.status == 404:
                    return True  # the pod is gone: nothing left to report
                log.warning("status of %s: %s", self._path, error)
                return False
            except (TimeoutError, aiohttp.ClientError) as error:
                log.warning("status of %s: %s", self._path, error)
                return False
            self._sent = text
            return True
