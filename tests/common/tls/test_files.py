"""Start-up errors name the flag of the file at fault, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from triskel.common.tls import SERVER_FLAGS, TlsFileError, TlsFiles, TlsFlags
from triskel.common.tls.files import read_ca, read_key_pair

from support.tls_certs import make_pki


def test_a_matching_pair_and_ca_are_read(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(
        cert_file=pki.server.cert_path, key_file=pki.server.key_path, ca_file=pki.ca.path
    )
    pair = read_key_pair(files, SERVER_FLAGS)
    assert pair.cert_chain_pem == pki.server.cert_path.read_bytes()
    assert read_ca(files, SERVER_FLAGS) == pki.ca.path.read_bytes()


@pytest.mark.parametrize(
    ("broken", "flag"),
    [
        # The file is not there (a Secret not mounted yet, a typo).
        ("missing_cert", "--tls-cert-file"),
        ("missing_key", "--tls-key-file"),
        # The key of another certificate: the commonest mix-up after a renewal.
        ("other_key", "--tls-key-file"),
        # The files swapped: neither holds what its flag says.
        ("swapped", "--tls-cert-file"),
    ],
)
def test_an_unusable_pair_names_its_flag(tmp_path: Path, broken: str, flag: str) -> None:
    pki = make_pki(tmp_path)
    cert, key = pki.server.cert_path, pki.server.key_path
    if broken == "missing_cert":
        cert = tmp_path / "absent.crt"
    elif broken == "missing_key":
        key = tmp_path / "absent.key"
    elif broken == "other_key":
        key = pki.client.key_path
    else:
        cert, key = key, cert
    with pytest.raises(TlsFileError) as raised:
        read_key_pair(TlsFiles(cert_file=cert, key_file=key), SERVER_FLAGS)
    message = str(raised.value)
    assert raised.value.flag == flag
    assert message.startswith(f"{flag}: ")
    assert "\n" not in message


def test_a_ca_file_without_a_certificate_names_its_flag(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    not_a_ca = tmp_path / "ca.txt"
    not_a_ca.write_text("hello\n")
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path, ca_file=not_a_ca)
    flags = TlsFlags(ca="--worker-tls-ca-file")
    with pytest.raises(TlsFileError, match=r"^--worker-tls-ca-file: .*holds no PEM CA"):
        read_ca(files, flags)


def test_client_certificates_need_a_ca() -> None:
    with pytest.raises(ValidationError, match="require_client_cert: needs ca_file"):
        TlsFiles(cert_file=Path("c"), key_file=Path("k"), require_client_cert=True)
