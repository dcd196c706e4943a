"""A test-only "process kubelet": pods on the rig's API server run as local processes.

The rig (`scripts/kube-rig/`) has an API server and kube-controller-manager but no
scheduler and no kubelet, so pods stay Pending. This package is both, for one node:

- `node.py`: registers the Node (`proc-node`, Ready) and renews its status and Lease;
- `scheduler.py`: binds Pending pods of the namespaces it serves to that node;
- `pod.py`, `container.py`, `process.py`: runs each bound pod's containers as local
  processes (restartPolicy, back-off, preStop, SIGTERM, SIGKILL, the final DELETE);
- `host.py`, `addresses.py`, `env.py`, `volumes.py`, `credentials.py`: the pod's view
  in host terms: each pod on its own 127.0.0.N (wildcard binds rewritten to it),
  volume mountPaths rewritten to per-pod folders, `$(VAR)` expansion and the downward
  API as Kubernetes does them, and a $KUBECONFIG for the pod's ServiceAccount;
- `actions.py`, `probes.py`: startup, readiness and liveness probes (exec, httpGet,
  tcpSocket, grpc);
- `status.py`: phase, pod IP, container statuses and conditions, as they really are;
- `kubelet.py`: all of it in one thread with its own event loop; `harness.py`: the
  context manager tests use.

    with process_kubelet(real_api, tmp_path, [namespace]) as kubelet:
        real_api.kubectl("apply", "-f", "deployment.yaml", namespace=namespace)
        ...  # pods run; kubelet.pod_logs() holds their output

What it is not: no container isolation (processes share this machine's filesystem,
users and network), no images (an image maps to an entrypoint in this venv), no
Services (no kube-proxy: clients use pod IPs), no init containers.
"""

from .config import TRISKEL_ENTRYPOINTS, KubeletConfig
from .harness import process_kubelet
from .kubelet import KubeletFailed, ProcessKubelet

__all__ = [
    "TRISKEL_ENTRYPOINTS",
    "KubeletConfig",
    "KubeletFailed",
    "ProcessKubelet",
    "process_kubelet",
]
