"""A small Kubernetes API client: get, list, create, patch, delete, apply.

kopf watches and patches the custom resources itself; the Deployments, Services,
PDBs and ConfigMaps the operator owns go through this client. It speaks plain
HTTP (aiohttp, which kopf already uses) with the credentials kopf logged in with,
so the operator needs no second Kubernetes library and tests can point it at an
emulated API server.

`apply` is the idempotent step every reconcile uses: create when missing, merge-
patch only the fields that differ when present, so re-running a reconcile after a
restart changes nothing and duplicates nothing.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    import kopf

Json = dict[str, Any]

# Plural resource names of the kinds the operator manages (kind → (api prefix, plural)).
_RESOURCES: dict[tuple[str, str], str] = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    # Kubernetes 1.20 serves PodDisruptionBudgets in v1beta1 only.
    ("policy/v1beta1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("discovery.k8s.io/v1", "EndpointSlice"): "endpointslices",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("triskel.io/v1alpha1", "WorkerPool"): "workerpools",
    ("triskel.io/v1alpha1", "ServingGraph"): "servinggraphs",
    ("triskel.io/v1alpha1", "RoutingPolicy"): "routingpolicies",
}


class KubeError(Exception):
    """The API server refused a call: the HTTP `status`, and from the server's Status
    object its `reason` (`Invalid`, `Forbidden`, `AlreadyExists`...) and `message`."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason

    @property
    def is_transient(self) -> bool:
        """Worth retrying as is: the server was busy, failing or racing another writer."""
        return self.status in (409, 429) or self.status >= 500


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the API server is and how to prove who we are (from kopf's login)."""

    server: str
    token: str | None = None
    # A token file re-read on every call (service account tokens rotate).
    token_path: str | None = None
    ca_path: str | None = None
    # PEM text of the cluster CA (kubeconfigs often inline it).
    ca_data: str | None = None
    # Client certificate login (kubeconfigs of kind and kubeadm clusters).
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_path, cadata=self.ca_data)
        if self.certificate_path:
            context.load_cert_chain(self.certificate_path, self.private_key_path)
        return context


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_credentials() -> Credentials | None:
    """The pod's service account, or None outside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = SERVICE_ACCOUNT_DIR / "token"
    if not host or not token.is_file():
        return None
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return Credentials(
        server=f"https://{host}:{port}",
        token_path=str(token),
        ca_path=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
    )


def kubeconfig_credentials() -> Credentials | None:
    """The current context of `$KUBECONFIG` (or `~/.kube/config`); None without either.

    Read with kopf's own kubeconfig loader, the one the operator logs in with, so both
    components understand the same kubeconfigs (tokens, CA files or data, client certs)."""
    import kopf  # here, not at the top: the router needs it only outside a pod

    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    return None if info is None else credentials_of(info)


def credentials_of(info: kopf.ConnectionInfo) -> Credentials:
    """kopf's login result as this client's credentials."""
    return Credentials(
        server=info.server,
        token=info.token,
        ca_path=None if info.ca_path is None else str(info.ca_path),
        ca_data=None if info.ca_data is None else _text(info.ca_data),
        certificate_path=None if info.certificate_path is None else str(info.certificate_path),
        private_key_path=None if info.private_key_path is None else str(info.private_key_path),
        insecure=bool(info.insecure),
    )


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


def resource_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """The REST path of a namespaced object (or of its collection when `name` is None)."""
    plural = _RESOURCES.get((api_version, kind))
    if plural is None:
        raise ValueError(f"the operator does not manage {api_version} {kind}")
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


def path_of(obj: Mapping[str, Any]) -> str:
    metadata = obj["metadata"]
    return resource_path(obj["apiVersion"], obj["kind"], metadata["namespace"], metadata["name"])


def drift(desired: Any, actual: Any) -> Any:
    """The merge patch that makes `actual` agree with `desired` on desired's fields.

    Fields only the server sets (status, uid, defaults it filled in) are left
    alone: only what `desired` names is compared. None when nothing differs.
    """
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        patch = {}
        for key, value in desired.items():
            sub = drift(value, actual.get(key))
            if sub is not None:
                patch[key] = sub
        return patch or None
    if isinstance(desired, list) and isinstance(actual, list) and len(desired) == len(actual):
        # A merge patch replaces lists whole; send one only when an element really
        # differs (the server adds defaults inside list items, e.g. to containers).
        same = all(drift(d, a) is None for d, a in zip(desired, actual, strict=True))
        return None if same else desired
    return None if desired == actual else desired


class KubeClient:
    """Async calls to one API server; `close()` when done."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        headers = {"Accept": "application/json"}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        self._token_path = None if credentials.token_path is None else Path(credentials.token_path)
        ssl_context = credentials.ssl_context() if credentials.server.startswith("https") else False
        self._session = aiohttp.ClientSession(
            base_url=credentials.server.rstrip("/"),
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=ssl_context),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self._session.close()

    def _auth(self) -> dict[str, str]:
        if self._token_path is None:
            return {}
        return {"Authorization": f"Bearer {self._token_path.read_text().strip()}"}

    async def get(self, path: str) -> Json | None:
        """The object at `path`, or None when it does not exist."""
        async with self._session.get(path, headers=self._auth()) as response:
            if response.status == 404:
                return None
            return await _json(response)

    async def list(self, path: str) -> list[Json]:
        async with self._session.get(path, headers=self._auth()) as response:
            items: list[Json] = (await _json(response)).get("items", [])
            return items

    async def create(self, obj: Json) -> Json:
        collection = path_of(obj).rsplit("/", 1)[0]
        async with self._session.post(collection, json=obj, headers=self._auth()) as response:
            return await _json(response)

    async def merge_patch(self, path: str, patch: Json) -> Json:
        headers = {"Content-Type": "application/merge-patch+json", **self._auth()}
        async with self._session.patch(path, json=patch, headers=headers) as response:
            return await _json(response)

    async def delete(self, path: str) -> bool:
        """Deletes the object; False when it was already gone."""
        async with self._session.delete(path, headers=self._auth()) as response:
            if response.status == 404:
                return False
            await _json(response)
            return True

    async def apply(self, desired: Json) -> Json:
        """Creates `desired`, or patches the live object where it drifted from it."""
        path = path_of(desired)
        actual = await self.get(path)
        if actual is None:
            try:
                return await self.create(desired)
            except KubeError as error:
                # Someone created it since the get (409 AlreadyExists): patch that one.
                actual = await self.get(path) if error.status == 409 else None
                if actual is None:
                    raise
        patch = drift({k: v for k, v in desired.items() if k != "status"}, actual)
        if patch is None:
            return actual
        return await self.merge_patch(path, patch)


async def _json(response: aiohttp.ClientResponse) -> Json:
    if response.status >= 400:
        text = await response.text()
        try:
            status = json.loads(text)
        except ValueError:
            status = None
        if isinstance(status, dict) and status.get("kind") == "Status":
            raise KubeError(
                response.status,
                str(status.get("message", ""))[:1000],
                str(status.get("reason", "")),
            )
        raise KubeError(response.status, text[:500])
    body: Json = await response.json(content_type=None)
    return body
