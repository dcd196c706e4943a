"""The TLS flags of `triskel router` and `triskel worker`: laid over --config-json's
sections, a flag that needs another named in one line, unusable files named by flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from triskel.cli.main import app
from triskel.cli.tls_flags import tls_section, worker_tls_section

from support.tls_certs import make_pki

runner = CliRunner()


def test_no_flag_keeps_the_configured_section() -> None:
    configured = {"certFile": "a", "keyFile": "b"}
    assert tls_section(configured, None, None, None) is configured
    assert worker_tls_section(None, None, None, None, None) is None


def test_flags_replace_fields_and_a_client_ca_requires_client_certificates() -> None:
    section = tls_section({"certFile": "old", "keyFile": "k"}, Path("new"), None, Path("ca"))
    assert section == {
        "certFile": "new",
        "keyFile": "k",
        "caFile": "ca",
        "requireClientCert": True,
    }


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        # A certificate is of no use without its key, nor a key without its certificate.
        ({"cert_file": Path("c")}, "--tls-key-file"),
        ({"key_file": Path("k")}, "--tls-cert-file"),
        # Client certificates are checked against a CA on a TLS listener: it needs both.
        ({"client_ca_file": Path("ca")}, "--tls-cert-file"),
    ],
)
def test_a_flag_without_its_partner_names_the_missing_one(
    given: dict[str, Path], missing: str
) -> None:
    arguments = {"cert_file": None, "key_file": None, "client_ca_file": None} | given
    with pytest.raises(ValueError, match=f"^{missing}: needed with"):
        tls_section(None, **arguments)


def test_worker_tls_needs_certificate_key_and_ca() -> None:
    with pytest.raises(ValueError, match=r"^--worker-tls-ca-file: needed with"):
        worker_tls_section(None, Path("c"), Path("k"), None, "triskel-worker")
    section = worker_tls_section(None, Path("c"), Path("k"), Path("ca"), "triskel-worker")
    assert section == {
        "certFile": "c",
        "keyFile": "k",
        "caFile": "ca",
        "serverName": "triskel-worker",
    }


def test_the_router_command_names_the_flag_of_a_missing_partner() -> None:
    result = runner.invoke(
        app,
        ["router", "--config-json", '{"workers": ["127.0.0.1:1"]}', "--tls-cert-file", "c.pem"],
    )
    assert result.exit_code == 2
    assert "router: --tls-key-file: needed with --tls-cert-file" in result.output


def test_the_worker_command_names_an_unusable_file_by_its_flag(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pool = '{"role": "unified", "model": "m"}'
    result = runner.invoke(
        app,
        [
            "worker",
            "--pool-json",
            pool,
            "--worker-id",
            "w0",
            "--tls-cert-file",
            str(pki.server.cert_path),
            "--tls-key-file",
            str(pki.client.key_path),
        ],
    )
    assert result.exit_code == 2
    assert "--tls-key-file:" in result.output
    assert "is not the key of the certificate in --tls-cert-file" in result.output
