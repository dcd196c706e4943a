"""Hot reload of the keys file, as a mounted Kubernetes Secret changes: a symlink swap."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from triskel.router.auth.key_store import KeyStore
from triskel.router.auth.keys_file import KeysFileError

from support.waiting import wait_until


def entry(name: str, key: str, tenant: str = "acme") -> str:
    sha = hashlib.sha256(key.encode()).hexdigest()
    return f"  - {{name: {name}, sha256: {sha}, tenant: {tenant}}}\n"


class SecretMount:
    """A folder laid out as the kubelet mounts a Secret: keys.yaml → ..data/keys.yaml,
    ..data → a timestamped folder, swapped atomically on every update."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0
        (root / "keys.yaml").symlink_to("..data/keys.yaml")

    @property
    def path(self) -> Path:
        return self.root / "keys.yaml"

    def write(self, text: str) -> None:
        self.version += 1
        folder = self.root / f"..2024_{self.version}"
        folder.mkdir()
        (folder / "keys.yaml").write_text(text)
        staged = self.root / "..data_tmp"
        staged.symlink_to(folder.name)
        os.replace(staged, self.root / "..data")


@pytest.fixture
def mount(tmp_path: Path) -> SecretMount:
    mount = SecretMount(tmp_path)
    mount.write("keys:\n" + entry("old", "key-old"))
    return mount


def test_a_valid_change_replaces_every_key(mount: SecretMount) -> None:
    reloads: list[bool] = []
    store = KeyStore(mount.path, reloads.append)
    store.load()
    assert store.lookup("key-old") is not None
    assert not store.refresh()  # nothing changed: nothing read
    mount.write("keys:\n" + entry("new", "key-new", tenant="globex"))
    assert store.refresh()
    assert store.lookup("key-old") is None
    new = store.lookup("key-new")
    assert new is not None and new.tenant == "globex"
    assert reloads == [True]


def test_an_invalid_change_keeps_the_old_keys_logs_once_and_counts(
    mount: SecretMount, caplog: pytest.LogCaptureFixture
) -> None:
    reloads: list[bool] = []
    store = KeyStore(mount.path, reloads.append)
    store.load()
    mount.write("keys:\n  - {name: broken, sha256: nothex, tenant: acme}\n")
    with caplog.at_level(logging.ERROR, logger="triskel.router.auth.key_store"):
        assert not store.refresh()
        assert not store.refresh()  # the same bad file: not logged again
    assert store.lookup("key-old") is not None
    assert reloads == [False]
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "keys[0](broken).sha256" in record.getMessage()
    assert "\n" not in record.getMessage()
    # Fixed again: applied.
    mount.write("keys:\n" + entry("fixed", "key-fixed"))
    assert store.refresh() and reloads == [False, True]
    assert store.lookup("key-fixed") is not None and store.lookup("key-old") is None


def test_a_vanished_file_keeps_the_keys(mount: SecretMount) -> None:
    reloads: list[bool] = []
    store = KeyStore(mount.path, reloads.append)
    store.load()
    (mount.root / "..data").unlink()
    assert not store.refresh() and not store.refresh()
    assert store.lookup("key-old") is not None
    assert reloads == [False]


def test_an_unusable_file_at_start_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match=r"missing\.yaml: cannot read"):
        KeyStore(tmp_path / "missing.yaml").load()
    (tmp_path / "big.yaml").write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    with pytest.raises(KeysFileError, match="larger than"):
        KeyStore(tmp_path / "big.yaml").load()


@pytest.mark.asyncio
async def test_the_poller_picks_a_change_up(mount: SecretMount) -> None:
    store = KeyStore(mount.path, poll_interval_s=0.05)
    store.load()
    store.start()
    try:
        mount.write("keys:\n" + entry("new", "key-new"))
        await wait_until(lambda: store.lookup("key-new") is not None, timeout_s=5)
    finally:
        await store.aclose()
