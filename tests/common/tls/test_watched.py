"""Watched TLS files: new material only when the files changed to a good pair, a bad
version logged once while the last good pair stays, and stamps no more often than asked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from triskel.common.tls import SERVER_FLAGS, TlsFiles
from triskel.common.tls.watched import WatchedTlsFiles

from support.tls_certs import make_pki, replace_pair


def test_unchanged_files_give_nothing_and_a_renewal_gives_the_new_pair(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path)
    watched = WatchedTlsFiles(files, SERVER_FLAGS)
    assert watched.read_if_changed() is None
    renewed = pki.ca.issue(tmp_path, "renewed")
    replace_pair(pki.server, renewed)
    material = watched.read_if_changed()
    assert material is not None
    assert material.pair.cert_chain_pem == renewed.cert_path.read_bytes()
    assert watched.current == material
    # Read once: the same stamp gives nothing the second time.
    assert watched.read_if_changed() is None


def test_a_bad_version_is_logged_once_and_a_good_one_after_it_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path)
    watched = WatchedTlsFiles(files, SERVER_FLAGS)
    first = watched.current
    # Only the key changed, to another certificate's: the pair no longer matches.
    pki.server.key_path.write_bytes(pki.client.key_path.read_bytes())
    with caplog.at_level(logging.ERROR, logger="triskel.common.tls"):
        assert watched.read_if_changed() is None
        assert watched.read_if_changed() is None
    assert len(caplog.records) == 1
    assert "--tls-key-file" in caplog.records[0].getMessage()
    assert watched.current == first
    replace_pair(pki.server, pki.ca.issue(tmp_path, "fixed"))
    assert watched.read_if_changed() is not None


def test_files_are_stamped_no_more_often_than_asked(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = TlsFiles(cert_file=pki.server.cert_path, key_file=pki.server.key_path)
    # An hour between checks: the renewal below is not looked at during this test.
    watched = WatchedTlsFiles(files, SERVER_FLAGS, min_interval_s=3600.0)
    replace_pair(pki.server, pki.ca.issue(tmp_path, "renewed"))
    assert watched.read_if_changed() is None
    assert watched.current.pair.cert_chain_pem != pki.server.cert_path.read_bytes()
