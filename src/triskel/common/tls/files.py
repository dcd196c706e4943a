"""Which certificate files a listener or a client uses, read and checked as one pair.

A pair is read into memory once and checked there: the key must match the leaf
certificate. Every later use (an SSLContext, gRPC credentials) loads those checked
bytes, never the files again, so a renewal that swaps the files between the check and
the load cannot leave a context holding a new certificate with the old key.

Errors name the command-line flag of the file at fault (`--tls-key-file: ...`).
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import model_validator

from triskel.common.api import ApiModel

_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKER = b"PRIVATE KEY-----"


class TlsFiles(ApiModel):
    """PEM files of one TLS identity, and whom it trusts."""

    cert_file: Path
    """The certificate chain, leaf first."""
    key_file: Path
    """The leaf certificate's private key (unencrypted PEM)."""
    ca_file: Path | None = None
    """CA certificates that peers' certificates must chain to: a server verifies clients
    with it, a client verifies servers (None for a client: the system's CAs)."""
    require_client_cert: bool = False
    """A server refuses clients without a certificate signed by `ca_file`."""

    @model_validator(mode="after")
    def _client_certs_need_a_ca(self) -> TlsFiles:
        if self.require_client_cert and self.ca_file is None:
            raise ValueError("require_client_cert: needs ca_file (whose clients to accept)")
        return self


class ClientTlsFiles(ApiModel):
    """A client's certificate (its identity to servers that require one) and the CA
    the servers' certificates must chain to."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    server_name: str | None = None
    """The name servers' certificates hold, when it is not the address dialled
    (workers are dialled by pod IP; their certificate names a service)."""

    def as_files(self) -> TlsFiles:
        return TlsFiles(cert_file=self.cert_file, key_file=self.key_file, ca_file=self.ca_file)


@dataclass(frozen=True, slots=True)
class TlsFlags:
    """The flags that name each file in error messages."""

    cert: str = "--tls-cert-file"
    key: str = "--tls-key-file"
    ca: str = "--tls-client-ca-file"


# A server's own flags; clients name theirs (e.g. --worker-tls-cert-file).
SERVER_FLAGS = TlsFlags()


class TlsFileError(ValueError):
    """A file cannot be used; `flag` names it, the message starts with it."""

    def __init__(self, flag: str, problem: str) -> None:
        super().__init__(f"{flag}: {problem}")
        self.flag = flag


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A checked certificate chain and its key, as PEM bytes."""

    cert_chain_pem: bytes
    key_pem: bytes


FilesStamp = tuple[tuple[int, int, int, int], ...]


def files_stamp(files: TlsFiles) -> FilesStamp:
    """What changes when any of the files is replaced: device, inode, mtime and size
    of each, symlinks followed (a mounted Secret swaps a symlink on renewal).
    A file that is missing for now stamps as zeros."""
    stamps = []
    for path in (files.cert_file, files.key_file, files.ca_file):
        if path is None:
            continue
        try:
            info = path.stat()
        except OSError:
            stamps.append((0, 0, 0, 0))
            continue
        stamps.append((info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def read_key_pair(files: TlsFiles, flags: TlsFlags) -> KeyPair:
    """The files' chain and key, checked; TlsFileError naming the flag otherwise."""
    cert_pem = _read(files.cert_file, flags.cert)
    key_pem = _read(files.key_file, flags.key)
    if _CERT_MARKER not in cert_pem:
        raise TlsFileError(flags.cert, f"{files.cert_file} holds no PEM certificate")
    if _KEY_MARKER not in key_pem:
        raise TlsFileError(flags.key, f"{files.key_file} holds no PEM private key")
    pair = KeyPair(cert_pem, key_pem)
    try:
        load_key_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), pair)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise TlsFileError(
                flags.key, f"{files.key_file} is not the key of the certificate in {flags.cert}"
            ) from None
        raise TlsFileError(
            flags.cert, f"cannot load {files.cert_file} with {flags.key}: {error.reason}"
        ) from None
    return pair


def read_ca(files: TlsFiles, flags: TlsFlags) -> bytes | None:
    """The CA bundle's PEM bytes (None without one); TlsFileError naming the flag."""
    if files.ca_file is None:
        return None
    ca_pem = _read(files.ca_file, flags.ca)
    try:
        ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise TlsFileError(flags.ca, f"{files.ca_file} holds no PEM CA certificate") from None
    return ca_pem


def load_key_pair(context: ssl.SSLContext, pair: KeyPair) -> None:
    """Loads `pair` into `context` from memory (ssl takes only paths: an anonymous
    in-memory file's, so the key touches no disk and a read-only root works)."""
    with _memory_file(pair.cert_chain_pem) as cert_path, _memory_file(pair.key_pem) as key_path:
        context.load_cert_chain(cert_path, key_path)


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsFileError(flag, f"cannot read {path}: {error.strerror}") from None


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("triskel-tls", os.MFD_CLOEXEC)
    try:
        rest = memoryview(data)
        while rest:
            rest = rest[os.write(fd, rest) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
