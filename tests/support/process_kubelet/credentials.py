"""A pod's ServiceAccount credentials, as a kubeconfig its processes find in $KUBECONFIG.

A kubelet mounts a token at /var/run/secrets/kubernetes.io/serviceaccount; that
path is the same for every process on one host, so here each pod gets a kubeconfig
in its own folder instead: the API server, the rig's CA, and the token of the pod's
ServiceAccount. Kubernetes 1.20's token controller writes that token into a
`<account>-token-*` Secret shortly after the account is created; `kubeconfig_for`
waits for it, as a pod waits for its token volume. (Triskel's operator and router
read $KUBECONFIG when there is no token file.)

A pod with `automountServiceAccountToken: false` (or whose ServiceAccount says so)
gets no credentials, as it would get no token volume.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .api import ApiClient, ApiLogin, Json

TOKEN_TYPE = "kubernetes.io/service-account-token"


class TokenMissing(Exception):
    """The ServiceAccount, or its token Secret, does not exist yet."""


def account_of(pod: Json) -> str:
    # Filled in by the ServiceAccount admission plugin, which the rig turns off.
    return str(pod["spec"].get("serviceAccountName") or "default")


async def kubeconfig_for(api: ApiClient, login: ApiLogin, pod: Json, path: Path) -> Path | None:
    """Writes the kubeconfig of `pod`'s ServiceAccount to `path`; None when the pod
    mounts no token. TokenMissing while the account or its token is missing."""
    namespace = pod["metadata"]["namespace"]
    account_name = account_of(pod)
    account = await api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account_name}")
    if account is None:
        raise TokenMissing(f"ServiceAccount {namespace}/{account_name} does not exist")
    automount = pod["spec"].get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken", True)
    if not automount:
        return None
    token = await _token(api, namespace, account)
    _write_private(path, json.dumps(_kubeconfig(login, account_name, namespace, token), indent=1))
    return path


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)  # a token: readable by its owner only


async def _token(api: ApiClient, namespace: str, account: Json) -> str:
    listed = await api.get(
        f"/api/v1/namespaces/{namespace}/secrets", {"fieldSelector": f"type={TOKEN_TYPE}"}
    )
    for secret in (listed or {}).get("items", []):
        annotations = secret["metadata"].get("annotations", {})
        if annotations.get("kubernetes.io/service-account.uid") == account["metadata"][
            "uid"
        ] and "token" in secret.get("data", {}):
            return base64.b64decode(secret["data"]["token"]).decode()
    name = account["metadata"]["name"]
    raise TokenMissing(f"no token Secret yet for ServiceAccount {namespace}/{name}")


def _kubeconfig(login: ApiLogin, account_name: str, namespace: str, token: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "cluster",
                "cluster": {"server": login.server, "certificate-authority": str(login.ca_path)},
            }
        ],
        "users": [{"name": account_name, "user": {"token": token}}],
        "contexts": [
            {
                # The namespace a pod's clients default to (in a pod: the token volume's
                # `namespace` file).
                "name": "pod",
                "context": {"cluster": "cluster", "user": account_name, "namespace": namespace},
            }
        ],
        "current-context": "pod",
    }
