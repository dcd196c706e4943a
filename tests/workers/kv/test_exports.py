from __future__ import annotations

import pytest

from triskel.workers.kv.exports import ExportTable, ExportUnavailable

NONCE = b"n" * 16


def table_with_done() -> tuple[ExportTable, list[str]]:
    table = ExportTable()
    done: list[str] = []
    table.on_done(done.append)
    return table, done


def test_claim_complete_fires_once_and_forgets() -> None:
    table, done = table_with_done()
    table.add("r", [3, 4], [30, 40], NONCE)
    export = table.claim("r", NONCE)
    assert export.block_ids == (3, 4) and export.is_in_flight
    assert table.complete(export) is True
    assert done == ["r"] and len(table) == 0
    with pytest.raises(ExportUnavailable, match="unknown or expired KV handle r"):
        table.claim("r", NONCE)


def test_one_pull_at_a_time_and_release_allows_a_retry() -> None:
    table, done = table_with_done()
    table.add("r", [1], [10], NONCE)
    export = table.claim("r", NONCE)
    with pytest.raises(ExportUnavailable, match="KV handle r is already being pulled"):
        table.claim("r", NONCE)
    table.release(export)
    assert table.claim("r", NONCE) is export
    assert done == []


def test_withdraw_mid_pull_suppresses_done() -> None:
    # The owner freed the blocks on withdraw; a late completion must not free them twice.
    table, done = table_with_done()
    table.add("r", [1], [10], NONCE)
    export = table.claim("r", NONCE)
    assert table.withdraw("r") is True
    assert table.complete(export) is False
    assert done == []
    assert table.withdraw("r") is False


def test_a_failing_callback_does_not_stop_the_others() -> None:
    table, done = table_with_done()

    def broken(request_id: str) -> None:
        raise RuntimeError("boom")

    table.on_done(broken)
    table.on_done(done.append)
    table.add("r", [1], [10], NONCE)
    table.complete(table.claim("r", NONCE))
    assert done == ["r", "r"]  # registered twice: before and after the broken one


@pytest.mark.parametrize(
    ("block_ids", "checksums", "message"),
    [([1, 2], [1], "2 block ids but 1 checksums for request 'x'")],
)
def test_add_checks_its_input(block_ids: list[int], checksums: list[int], message: str) -> None:
    table = ExportTable()
    with pytest.raises(ValueError, match=message):
        table.add("x", block_ids, checksums, NONCE)
    table.add("y", [1], [1], NONCE)
    with pytest.raises(ValueError, match="request_id 'y' is already exported"):
        table.add("y", [1], [1], NONCE)


def test_claim_needs_the_exports_own_nonce() -> None:
    # A token minted for an earlier export of the same request id claims nothing,
    # and leaves the export available for the right one.
    table, _ = table_with_done()
    table.add("r", [1], [10], NONCE)
    with pytest.raises(ExportUnavailable, match="KV handle r is for an earlier export"):
        table.claim("r", b"o" * 16)
    assert table.claim("r", NONCE).is_in_flight
