"""Labels, selectors and owner references of a pool's children."""

from __future__ import annotations

import pytest

from triskel.operator.builders.labels import (
    label_value,
    owner_reference,
    pool_labels,
    pool_selector,
    selector_string,
)

from support.pool_objects import LABEL_VALUE, OWNER, OWNER_BODY, pool_spec


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # Already valid: unchanged.
        ("llama-3.1-8b", "llama-3.1-8b"),
        # A Hugging Face id: "/" is not allowed in a label value.
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama_Llama-3.1-8B-Instruct"),
        # A run of bad characters is one "_"; values must start and end alphanumeric.
        ("/org//my model!/", "org_my_model"),
    ],
)
def test_label_value_sanitises_model_names(model: str, expected: str) -> None:
    assert label_value(model) == expected


def test_long_values_keep_their_head_and_differ_by_hash() -> None:
    first, second = label_value("org/" + "x" * 80 + "-a"), label_value("org/" + "x" * 80 + "-b")
    # 63 characters is Kubernetes' limit; the shared head survives, the hash tells them apart.
    assert len(first) == len(second) == 63
    assert first.startswith("org_xxx") and first != second
    assert LABEL_VALUE.match(first) and LABEL_VALUE.match(second)


def test_a_value_with_nothing_valid_is_its_hash() -> None:
    value = label_value("///")
    assert len(value) == 8 and LABEL_VALUE.match(value)


def test_selector_is_the_stable_subset_of_the_labels() -> None:
    labels = pool_labels("p1", pool_spec(role="prefill", model="meta-llama/Llama-3.1-8B"))
    selector = pool_selector("p1")
    assert selector.items() <= labels.items()
    # A Deployment's selector is immutable: role and model may change, so they are not in it.
    assert "triskel.io/role" not in selector and "triskel.io/model" not in selector
    assert labels["triskel.io/role"] == "prefill"
    assert labels["app.kubernetes.io/managed-by"] == "triskel-operator"


def test_selector_string_is_sorted_key_value_pairs() -> None:
    # The form `kubectl get pods -l` and the scale subresource's status.selector take.
    assert selector_string("p1") == (
        "app.kubernetes.io/component=worker,app.kubernetes.io/name=triskel,triskel.io/pool=p1"
    )


def test_owner_reference_names_the_custom_resource() -> None:
    assert owner_reference(OWNER_BODY) == OWNER


@pytest.mark.parametrize(
    ("drop", "fragment"),
    [("uid", "metadata.uid"), ("name", "metadata.name")],
)
def test_owner_reference_names_what_the_body_lacks(drop: str, fragment: str) -> None:
    body = {
        **OWNER_BODY,
        "metadata": {k: v for k, v in OWNER_BODY["metadata"].items() if k != drop},
    }
    with pytest.raises(ValueError, match=fragment):
        owner_reference(body)
