"""A full-parameter model's own deployment is configured with its model code only (CDK cannot know the
weights' location at synth): its weights and base model come from the models table at start, and its
chat family from the catalog entry of that base model (the chat template must be the trainer's).

Prints shell assignments for entrypoint.sh to eval."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any

from ft_contract import load_catalog


def assignments(code: str, item: Mapping[str, Any] | None) -> dict[str, str]:
    """The environment of `code`'s deployment from its models-table item; SystemExit when there is
    nothing to serve. MODEL_FAMILY is left out for a base model the catalog no longer lists:
    entrypoint.sh then reads the weights' ft_model.json."""
    if (
        not item
        or item.get("status") != "ready"
        or item.get("method") != "full"
        or not item.get("artifactUri")
        or not item.get("baseModel")
    ):
        sys.exit(f"model {code} is not a ready full-parameter model; nothing to serve")
    values = {
        "MODEL_ARTIFACT_URI": str(item["artifactUri"]),
        "BASE_MODEL": str(item["baseModel"]),
        "SERVED_MODEL_NAME": code,
    }
    entry = load_catalog().model(values["BASE_MODEL"])
    if entry is not None:
        values["MODEL_FAMILY"] = entry.family
    return values


def main() -> None:
    import boto3

    code = os.environ["MODEL_CODE"]
    table = boto3.resource("dynamodb").Table(os.environ["MODELS_TABLE"])
    item = table.get_item(Key={"modelCode": code}, ConsistentRead=True).get("Item")
    values = assignments(code, item)
    print(" ".join(f"{name}={shlex.quote(value)}" for name, value in values.items()))


if __name__ == "__main__":
    main()
