"""A full-parameter model's own deployment is configured with its model code only (CDK cannot know the
weights' location at synth): its weights and base model come from the models table at start.

Prints shell assignments for entrypoint.sh to eval."""

from __future__ import annotations

import os
import shlex
import sys

import boto3


def main() -> None:
    code = os.environ["MODEL_CODE"]
    table = boto3.resource("dynamodb").Table(os.environ["MODELS_TABLE"])
    item = table.get_item(Key={"modelCode": code}, ConsistentRead=True).get("Item")
    if (
        not item
        or item.get("status") != "ready"
        or item.get("method") != "full"
        or not item.get("artifactUri")
    ):
        sys.exit(f"model {code} is not a ready full-parameter model; nothing to serve")
    values = {
        "MODEL_ARTIFACT_URI": str(item["artifactUri"]),
        "BASE_MODEL": str(item["baseModel"]),
        "SERVED_MODEL_NAME": code,
    }
    print(" ".join(f"{name}={shlex.quote(value)}" for name, value in values.items()))


if __name__ == "__main__":
    main()
