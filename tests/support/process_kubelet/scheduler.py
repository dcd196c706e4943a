"""The scheduler's one job, for one node: bind Pending pods to it.

A pod is bound (through `pods/binding`, as kube-scheduler binds; the API server then
sets its nodeName and its PodScheduled condition) when it has no nodeName, is not
being deleted, lives in a namespace this kubelet serves, asks for the default
scheduler, and its `nodeSelector` matches the node's labels. Affinity, taints and
resource requests are not weighed: there is one node, and a test pod that does not
fit a laptop is a test bug.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .api import ApiClient, ApiError, Json
from .informer import follow

log = logging.getLogger(__name__)
DEFAULT_SCHEDULER = "default-scheduler"


def should_bind(pod: Json, namespaces: frozenset[str] | None, labels: Mapping[str, str]) -> bool:
    metadata, spec = pod["metadata"], pod["spec"]
    if spec.get("nodeName") or metadata.get("deletionTimestamp"):
        return False
    if namespaces is not None and metadata["namespace"] not in namespaces:
        return False
    if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return False
    selector: dict[str, str] = spec.get("nodeSelector", {})
    return all(labels.get(key) == value for key, value in selector.items())


class Binder:
    def __init__(
        self,
        api: ApiClient,
        node_name: str,
        labels: Mapping[str, str],
        namespaces: frozenset[str] | None,
    ) -> None:
        self._api = api
        self._node_name = node_name
        self._labels = labels
        self._namespaces = namespaces

    async def run_forever(self) -> None:
        unscheduled = {"fieldSelector": "spec.nodeName="}
        await follow(self._api, "/api/v1/pods", unscheduled, self._handle)

    async def _handle(self, kind: str, pod: Json) -> None:
        if kind == "DELETED" or not should_bind(pod, self._namespaces, self._labels):
            return
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "uid": pod["metadata"]["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self._node_name},
        }
        try:
            await self._api.post(f"/api/v1/namespaces/{namespace}/pods/{name}/binding", binding)
        except ApiError as error:
            # 409: bound already (an event from before our own binding); 404: gone.
            if error.status not in (404, 409):
                log.warning("binding %s/%s: %s", namespace, name, error)
            return
        log.info("bound %s/%s to %s", namespace, name, self._node_name)
