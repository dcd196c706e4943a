"""The TLS flags of `triskel router` and `triskel worker`, laid over `--config-json`.

    --tls-cert-file + --tls-key-file      the listener's certificate (both or neither)
    --tls-client-ca-file                  clients need a certificate this CA signed (mTLS)
    --worker-tls-cert-file/-key-file/-ca-file [--worker-tls-server-name]
                                          the router's client certificate for workers

A flag replaces the same field of the config's section; the files themselves are read
and checked when the process starts (triskel.common.tls), with errors naming the flag.
The flags several commands take are declared here once, as `Annotated` aliases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

# A listener's key, for `triskel router` and `triskel worker` (their certificate and
# client-CA flags say what each serves, so each command declares those itself).
TlsKeyFile = Annotated[
    Path | None, typer.Option("--tls-key-file", help="the certificate's private key")
]

# The client certificate for workers, for `triskel router` and `triskel operator`.
RouterWorkerTlsCertFile = Annotated[
    Path | None,
    typer.Option("--worker-tls-cert-file", help="the certificate to call workers with"),
]
OperatorWorkerTlsCertFile = Annotated[
    Path | None,
    typer.Option("--worker-tls-cert-file", help="this operator's certificate for workers"),
]
WorkerTlsKeyFile = Annotated[
    Path | None, typer.Option("--worker-tls-key-file", help="its private key")
]
WorkerTlsCaFile = Annotated[
    Path | None,
    typer.Option("--worker-tls-ca-file", help="the CA workers' certificates chain to"),
]
WorkerTlsServerName = Annotated[
    str | None,
    typer.Option("--worker-tls-server-name", help="the name in workers' certificates"),
]


def tls_section(
    configured: Any, cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None
) -> Any:
    """The `tls` section: `configured` (from --config-json) with the flags over it.
    ValueError naming the flag when one needs another."""
    if cert_file is None and key_file is None and client_ca_file is None:
        return configured
    section = dict(configured) if isinstance(configured, dict) else {}
    section |= _given({"certFile": cert_file, "keyFile": key_file})
    if client_ca_file is not None:
        section |= {"caFile": str(client_ca_file), "requireClientCert": True}
    _require(section, {"certFile": "--tls-cert-file", "keyFile": "--tls-key-file"})
    return section


def worker_tls_section(
    configured: Any,
    cert_file: Path | None,
    key_file: Path | None,
    ca_file: Path | None,
    server_name: str | None,
) -> Any:
    """The router's `workerTls` section, like `tls_section`."""
    given = _given(
        {"certFile": cert_file, "keyFile": key_file, "caFile": ca_file, "serverName": server_name}
    )
    if not given:
        return configured
    section = (dict(configured) if isinstance(configured, dict) else {}) | given
    _require(
        section,
        {
            "certFile": "--worker-tls-cert-file",
            "keyFile": "--worker-tls-key-file",
            "caFile": "--worker-tls-ca-file",
        },
    )
    return section


def _given(values: dict[str, Path | str | None]) -> dict[str, str]:
    return {key: str(value) for key, value in values.items() if value is not None}


def _require(section: dict[str, Any], flags: dict[str, str]) -> None:
    missing = [flag for key, flag in flags.items() if key not in section]
    if missing:
        given = ", ".join(flag for key, flag in flags.items() if key in section)
        raise ValueError(f"{missing[0]}: needed with {given}")
