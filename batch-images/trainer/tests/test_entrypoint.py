"""The container path: environment contract, S3 and DynamoDB I/O (LocalStack), tenant prefix checks."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from ft_trainer.config import ConfigError, from_environment
from ft_trainer.storage import check_base_model_uri, check_tenant_uri

TENANT = "tn_0123456789abcdef"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://data/tenants/tn_other/files/f.jsonl",
        "s3://data/tenants/tn_0123456789abcdef/../tn_other/f.jsonl",
        "s3://data/base-models/x/train.jsonl",
        "/etc/passwd",
        "file:///tmp/x.jsonl",
    ],
)
def test_refuses_a_uri_outside_the_tenant_prefix(uri: str) -> None:
    with pytest.raises(ConfigError, match="outside this tenant"):
        check_tenant_uri(uri, TENANT, "training file")


def test_accepts_the_tenant_prefix_and_shared_base_models(tmp_path: Path) -> None:
    assert check_tenant_uri(f"s3://data/tenants/{TENANT}/files/f.jsonl", TENANT, "x").key.endswith("f.jsonl")
    assert check_base_model_uri("s3://art/base-models/tiny-chat/").key == "base-models/tiny-chat/"
    assert check_base_model_uri(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError):
        check_base_model_uri("s3://art/tenants/tn_x/model/")


def test_reports_missing_and_malformed_configuration() -> None:
    with pytest.raises(ConfigError, match="JOB_ID"):
        from_environment({"METHOD": "lora"})
    base = {
        "JOB_ID": "j",
        "TENANT_ID": TENANT,
        "METHOD": "lora",
        "BASE_MODEL_URI": "/m",
        "TRAINING_FILE_URI": "s3://b/k",
        "OUTPUT_URI": "s3://b/o",
    }
    with pytest.raises(ConfigError, match="METHOD"):
        from_environment({**base, "METHOD": "qlora"})
    with pytest.raises(ConfigError, match="lora_r"):
        from_environment({**base, "HYPERPARAMETERS": '{"lora_r": 0}'})
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        from_environment({**base, "HYPERPARAMETERS": '{"epochs": 3}'})
    assert from_environment({**base, "HYPERPARAMETERS": '{"n_epochs": "auto"}'}).hyperparameters.n_epochs == 3


def _entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ft_trainer.entrypoint"],
        env={**os.environ, **env, "OMP_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.localstack
def test_trains_from_s3_writes_result_and_events_and_refuses_foreign_uris(
    tiny_model: Path, train_file: Path
) -> None:
    import boto3
    from botocore.config import Config

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    dynamo = boto3.client("dynamodb", endpoint_url=endpoint)
    run = secrets.token_hex(4)
    bucket, table = f"trainer-io-{run}", f"trainer-events-{run}"
    s3.create_bucket(Bucket=bucket)
    dynamo.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "jobKey", "KeyType": "HASH"},
            {"AttributeName": "eventKey", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "jobKey", "AttributeType": "S"},
            {"AttributeName": "eventKey", "AttributeType": "S"},
        ],
    )
    for file in tiny_model.iterdir():
        s3.upload_file(str(file), bucket, f"base-models/tiny-chat/{file.name}")
    s3.upload_file(str(train_file), bucket, f"tenants/{TENANT}/files/train.jsonl")
    env = {
        "JOB_ID": "ftjob-io",
        "TENANT_ID": TENANT,
        "METHOD": "lora",
        "BASE_MODEL_URI": f"s3://{bucket}/base-models/tiny-chat/",
        "TRAINING_FILE_URI": f"s3://{bucket}/tenants/{TENANT}/files/train.jsonl",
        "OUTPUT_URI": f"s3://{bucket}/tenants/{TENANT}/jobs/ftjob-io/",
        "EVENTS_TABLE": table,
        "HYPERPARAMETERS": json.dumps(
            {"n_epochs": 2, "batch_size": 2, "checkpoint_every_steps": 2, "max_seq_length": 128}
        ),
    }
    done = _entrypoint(env)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"tenants/{TENANT}/jobs/ftjob-io/")["Contents"]
    }
    prefix = f"tenants/{TENANT}/jobs/ftjob-io/"
    assert {
        prefix + "adapter/adapter_config.json",
        prefix + "adapter/adapter_model.safetensors",
        prefix + "metrics.jsonl",
        prefix + "result.json",
    } <= keys
    assert prefix + "checkpoints/step-2/checkpoint.json" in keys
    result = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "result.json")["Body"].read())
    assert result["steps"] == 4 and result["method"] == "lora"
    items = dynamo.query(
        TableName=table,
        KeyConditionExpression="jobKey = :k",
        ExpressionAttributeValues={":k": {"S": f"{TENANT}#ftjob-io"}},
    )["Items"]
    kinds = {i["type"]["S"] for i in items}
    assert kinds == {"message", "metrics"}
    assert any(i["type"]["S"] == "metrics" and "train_loss" in i["data"]["M"] for i in items)

    foreign = _entrypoint(
        {**env, "TRAINING_FILE_URI": f"s3://{bucket}/tenants/tn_someoneelse/files/train.jsonl"}
    )
    assert foreign.returncode == 2
    assert "outside this tenant" in foreign.stderr
    errors = dynamo.query(
        TableName=table,
        KeyConditionExpression="jobKey = :k",
        ExpressionAttributeValues={":k": {"S": f"{TENANT}#ftjob-io"}},
    )["Items"]
    assert any(i["level"]["S"] == "error" and "outside this tenant" in i["message"]["S"] for i in errors)

    missing = _entrypoint({**env, "BASE_MODEL_URI": f"s3://{bucket}/base-models/nothing/"})
    assert missing.returncode == 2 and "no weights" in missing.stderr
