"""values.yaml, values.schema.json and Chart.yaml agree with their sources of truth:
`triskel.common.chart_values` and the package version."""

from __future__ import annotations

import tomllib
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from triskel.common.chart_values import ChartValues, values_json_schema, values_json_schema_text

from support.helm import CHART, ROOT


def test_values_yaml_is_the_model_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values == ChartValues().model_dump(by_alias=True, mode="json")


def test_committed_schema_is_current() -> None:
    committed = (CHART / "values.schema.json").read_text()
    assert committed == values_json_schema_text(), "run: python scripts/gen_chart_schema.py"


def test_schema_is_self_contained_draft_7() -> None:
    schema = values_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    # helm 3 resolves no $defs: every reference is inlined.
    assert "$ref" not in values_json_schema_text() and "$defs" not in schema
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load((CHART / "values.yaml").read_text()))


def test_chart_versions_follow_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    # The image is tagged with the package version; an empty image.tag means appVersion.
    assert chart["appVersion"] == project["version"]
    assert chart["version"] == project["version"]


# (a value set, the field both the model and the schema must name)
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"router": {"replicas": -1}}, "router.replicas"),
    ({"router": {"replica": 2}}, "router.replica"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "operator.watchNamespaces.0"),
    ({"redis": {"image": {"repository": ""}}}, "redis.image.repository"),
    (
        {"operator": {"resources": {"limits": {"memory": "a lot"}}}},
        "operator.resources.limits.memory",
    ),
    # The liveness port: the operator's two listeners would clash.
    ({"operator": {"metrics": {"port": 8080}}}, "operator.metrics.port"),
    ({"operator": {"metrics": {"port": 0}}}, "operator.metrics.port"),
]


@pytest.mark.parametrize(("values", "field"), BAD_VALUES)
def test_model_and_schema_refuse_the_same_values(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChartValues.model_validate(values)
    locations = {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}
    # Unions (a quantity is a string or an integer) add the branch to the location.
    assert any(loc == field or loc.startswith(field + ".") for loc in locations), locations
    schema_errors = jsonschema.Draft7Validator(values_json_schema()).iter_errors(values)
    paths = {".".join(str(part) for part in error.absolute_path) for error in schema_errors}
    # An unknown key is reported on its parent object by JSON schema.
    parent = field.rpartition(".")[0]
    assert field in paths or parent in paths, paths
