from __future__ import annotations

from pathlib import Path

import pytest

from triskel.cli.up import worker_configs
from triskel.cli.up_config import UpConfigError, load_up_config, parse_up_config
from triskel.common.api import ConnectorType, Role


def test_built_in_default_is_one_encode_two_prefill_two_decode_over_tcp() -> None:
    config, source = load_up_config(None)
    assert source == "built-in defaults"
    workers = worker_configs(config)
    assert [w.worker_id for w in workers] == [
        "encode-0",
        "prefill-0",
        "prefill-1",
        "decode-0",
        "decode-1",
    ]
    assert [w.pool.role for w in workers].count(Role.PREFILL) == 2
    assert {w.pool.kv_connector.type for w in workers} == {ConnectorType.TCP}
    assert (config.router.http, config.router.grpc) == ("127.0.0.1:8080", "127.0.0.1:50051")


def test_examples_parse() -> None:
    for example in sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml")):
        load_up_config(example)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("pools: []", "pools: List should have at least 1 item"),
        (
            "pools:\n  - {name: a, role: prefill, model: m, surprise: 1}",
            "pools[0](a).surprise: Extra inputs are not permitted (got 1)",
        ),
        ("pools:\n  - {name: A_B, role: prefill, model: m}", "pools[0](A_B).name"),
        (
            "pools:\n  - {name: a, role: unified, model: m}\n"
            "  - {name: a, role: unified, model: m}",
            "pool name 'a' is used twice",
        ),
        ("- just a list", "expected a mapping with `pools`, got list"),
    ],
)
def test_errors_name_source_field_and_value(text: str, fragment: str) -> None:
    with pytest.raises(UpConfigError) as caught:
        parse_up_config(text, "deploy.yaml")
    message = str(caught.value)
    assert message.startswith("deploy.yaml: ")
    assert fragment in message, message


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UpConfigError, match=r"missing\.yaml: cannot read"):
        load_up_config(tmp_path / "missing.yaml")
