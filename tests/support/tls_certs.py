"""Certificates made by the test: a CA, and leaf certificates it signs, as PEM files.

    ca = CertAuthority.create(tmp_path, "ca")   a self-signed CA (EC P-256)
    leaf = ca.issue(tmp_path, "server")         SAN 127.0.0.1 and localhost, usable
                                                as a server and as a client
    ca.path                                     the CA's PEM, to trust it

Each issued certificate has a fresh random serial, which tests read back from a
peer's handshake to tell which certificate it presented.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = datetime.timedelta(days=1)
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class IssuedCert:
    cert_path: Path
    key_path: Path
    serial: int


@dataclass(frozen=True, slots=True)
class CertAuthority:
    path: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, folder: Path, name: str) -> CertAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        path = folder / f"{name}.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(path, key, cert)

    def issue(self, folder: Path, name: str, names: tuple[str, ...] = LOOPBACK_NAMES) -> IssuedCert:
        """A leaf for `names` (IP addresses or DNS names), for servers and clients."""
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID_FOR)
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
        write_pair(cert_path, key_path, cert, key)
        return IssuedCert(cert_path, key_path, serial)


def write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def serial_of(der_cert: bytes) -> int:
    """The serial number of a DER certificate (`SSLObject.getpeercert(True)`)."""
    return x509.load_der_x509_certificate(der_cert).serial_number


def serial_of_pem(pem_cert: str) -> int:
    return serial_of(ssl.PEM_cert_to_DER_cert(pem_cert))


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


@dataclass(frozen=True, slots=True)
class Pki:
    """What most TLS tests need: a CA with a server and a client certificate, and a
    second CA with a client certificate of its own (someone else's)."""

    ca: CertAuthority
    server: IssuedCert
    client: IssuedCert
    other_ca: CertAuthority
    stranger: IssuedCert


def make_pki(folder: Path) -> Pki:
    ca = CertAuthority.create(folder, "ca")
    other_ca = CertAuthority.create(folder, "other-ca")
    return Pki(
        ca=ca,
        server=ca.issue(folder, "server"),
        client=ca.issue(folder, "client"),
        other_ca=other_ca,
        stranger=other_ca.issue(folder, "stranger"),
    )


def replace_pair(target: IssuedCert, new: IssuedCert) -> None:
    """Renews `target`'s files in place with `new`'s pair, the way a mounted Secret
    renews: both files at once, behind a symlink swap (here: new inodes by rename)."""
    for source, destination in ((new.cert_path, target.cert_path), (new.key_path, target.key_path)):
        staged = destination.with_suffix(destination.suffix + ".new")
        staged.write_bytes(source.read_bytes())
        staged.replace(destination)


def client_context(ca_path: Path, cert: IssuedCert | None = None) -> ssl.SSLContext:
    """A client's context trusting `ca_path`, presenting `cert` when given."""
    context = ssl.create_default_context(cafile=str(ca_path))
    if cert is not None:
        context.load_cert_chain(cert.cert_path, cert.key_path)
    return context


class HttpsConnection:
    """One raw HTTP/1.1 keep-alive connection over TLS: which certificate the server
    presented on it, and GETs on it (aiohttp's client hides the connection)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.serial = serial_of(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> HttpsConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of GET `path`."""
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return int(lines[0].split()[1]), await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()
