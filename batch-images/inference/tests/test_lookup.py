"""A full-parameter model's deployment that knows only its code: what ft_inference.lookup tells
entrypoint.sh (weights, base model, served name and the chat family from the catalog)."""

from __future__ import annotations

import shlex
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from ft_inference import lookup

ITEM = {
    "modelCode": "support-bot",
    "status": "ready",
    "method": "full",
    "baseModel": "chatglm_12b",
    "artifactUri": "s3://artifacts/tenants/t1/jobs/ftjob-9/model/",
}


def test_a_ready_full_model_gets_its_weights_base_name_and_catalog_family() -> None:
    assert lookup.assignments("support-bot", ITEM) == {
        "MODEL_ARTIFACT_URI": "s3://artifacts/tenants/t1/jobs/ftjob-9/model/",
        "BASE_MODEL": "chatglm_12b",
        "SERVED_MODEL_NAME": "support-bot",
        "MODEL_FAMILY": "chatglm3",
    }


def test_a_base_model_the_catalog_no_longer_lists_leaves_the_family_to_the_weights() -> None:
    values = lookup.assignments("support-bot", {**ITEM, "baseModel": "retired-model"})

    assert "MODEL_FAMILY" not in values and values["BASE_MODEL"] == "retired-model"


@pytest.mark.parametrize(
    "item",
    [None, {**ITEM, "status": "training"}, {**ITEM, "method": "lora"}, {**ITEM, "artifactUri": ""}],
)
def test_anything_but_a_ready_full_model_is_refused(item: dict[str, Any] | None) -> None:
    with pytest.raises(SystemExit, match="nothing to serve"):
        lookup.assignments("support-bot", item)


def test_main_prints_shell_assignments_from_the_models_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    class Table:
        def get_item(self, **kwargs: Any) -> dict[str, Any]:
            asked.append(("get_item", kwargs))
            return {"Item": {**ITEM, "artifactUri": "s3://artifacts/it's here/model/"}}

    fake = SimpleNamespace(resource=lambda name: SimpleNamespace(Table=lambda table: Table()))
    monkeypatch.setitem(sys.modules, "boto3", fake)
    monkeypatch.setenv("MODEL_CODE", "support-bot")
    monkeypatch.setenv("MODELS_TABLE", "models")

    lookup.main()

    printed = dict(pair.split("=", 1) for pair in shlex.split(capsys.readouterr().out))
    assert printed == {
        "MODEL_ARTIFACT_URI": "s3://artifacts/it's here/model/",
        "BASE_MODEL": "chatglm_12b",
        "SERVED_MODEL_NAME": "support-bot",
        "MODEL_FAMILY": "chatglm3",
    }
    assert asked == [("get_item", {"Key": {"modelCode": "support-bot"}, "ConsistentRead": True})]
