"""The container path: environment contract, S3 and DynamoDB I/O (LocalStack), tenant prefix checks."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ft_trainer.config import ConfigError, from_environment
from ft_trainer.storage import check_base_model_uri, check_tenant_uri
from conftest import stage_tiny_job

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


def _entrypoint(env: dict[str, str], stop_after_step: int | None = None) -> subprocess.CompletedProcess[str]:
    """The container's training process; with `stop_after_step`, one whose host is reclaimed after it."""
    command = ["-m", "ft_trainer.entrypoint"]
    if stop_after_step is not None:
        command = [str(Path(__file__).with_name("reclaimed_host.py")), str(stop_after_step)]
    return subprocess.run(
        [sys.executable, *command],
        env={**os.environ, **env, "OMP_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _query(dynamo: Any, table: str, key: str) -> list[dict[str, Any]]:
    return list(
        dynamo.query(
            TableName=table,
            KeyConditionExpression="jobKey = :k",
            ExpressionAttributeValues={":k": {"S": key}},
        )["Items"]
    )


@pytest.mark.localstack
def test_trains_from_s3_resumes_after_a_crash_writes_result_events_and_progress_and_refuses_foreign_uris(
    tiny_model: Path, train_file: Path
) -> None:
    import boto3
    from botocore.config import Config

    # Prepare: a bucket with a base model and a tenant's file, the events and jobs tables, a running job.
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or pytest.fail(
        "REQUIRE_LOCALSTACK=1 but AWS_ENDPOINT_URL is unset"
    )
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    dynamo = boto3.client("dynamodb", endpoint_url=endpoint)
    run = secrets.token_hex(4)
    bucket, events, jobs = f"trainer-io-{run}", f"trainer-events-{run}", f"trainer-jobs-{run}"
    s3.create_bucket(Bucket=bucket)
    for table, key_names in ((events, ("jobKey", "eventKey")), (jobs, ("tenantId", "jobId"))):
        dynamo.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": key_names[0], "KeyType": "HASH"},
                {"AttributeName": key_names[1], "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in key_names],
        )
    job = "ftjob-io"
    dynamo.put_item(
        TableName=jobs, Item={"tenantId": {"S": TENANT}, "jobId": {"S": job}, "status": {"S": "running"}}
    )
    prefix = f"tenants/{TENANT}/jobs/{job}/"
    env = {
        **stage_tiny_job(s3, bucket, tiny_model, train_file, TENANT, job),
        "METHOD": "lora",
        "VALIDATION_FILE_URI": f"s3://{bucket}/tenants/{TENANT}/files/train.jsonl",
        "EVENTS_TABLE": events,
        "JOBS_TABLE": jobs,
        "HYPERPARAMETERS": json.dumps(
            {
                "n_epochs": 2,
                "batch_size": 8,
                "checkpoint_every_steps": 5,
                "eval_interval": 6,
                "max_seq_length": 128,
            }
        ),
    }

    def keys() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}

    # Act: a run that dies after step 5 (its checkpoint uploaded), then the retry.
    crashed = _entrypoint(env, stop_after_step=5)
    assert crashed.returncode == 1 and "HostReclaimed" in crashed.stderr, crashed.stdout + crashed.stderr
    assert prefix + "checkpoints/step-5/checkpoint.json" in keys() and prefix + "result.json" not in keys()
    done = _entrypoint(env)

    # Assess
    assert done.returncode == 0, done.stdout + done.stderr
    assert {
        prefix + "adapter/adapter_config.json",
        prefix + "adapter/adapter_model.safetensors",
        prefix + "adapter/tokenizer.json",
        prefix + "checkpoints/step-10/checkpoint.json",
        prefix + "metrics.jsonl",
        prefix + "results.csv",
        prefix + "result.json",
    } <= keys()
    manifest = json.loads(
        s3.get_object(Bucket=bucket, Key=prefix + "checkpoints/step-10/checkpoint.json")["Body"].read()
    )
    assert manifest["step"] == 10 and "train_loss" in manifest["metrics"] and manifest["created_at"] > 0
    result = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "result.json")["Body"].read())
    assert result["steps"] == 12 and result["method"] == "lora" and result["resumed_from"] == 5
    # Evaluated at steps 6 and 12 (eval_interval 6) on the validation file; the best one is delivered.
    assert result["best_step"] in (6, 12) and result["delivered_step"] == result["best_step"]
    assert result["full_valid_loss"] > 0 and 0 <= result["full_valid_mean_token_accuracy"] <= 1
    csv_rows = s3.get_object(Bucket=bucket, Key=prefix + "results.csv")["Body"].read().decode().splitlines()
    assert csv_rows[0].startswith("step,epoch,train_loss,train_mean_token_accuracy,valid_loss")
    assert csv_rows[1].split(",")[0] == "1" and csv_rows[-1].split(",")[0] == "12"
    metrics = s3.get_object(Bucket=bucket, Key=prefix + "metrics.jsonl")["Body"].read().decode().splitlines()
    assert json.loads(metrics[0])["step"] == 1 and json.loads(metrics[-1])["step"] == 12
    items = _query(dynamo, events, f"{TENANT}#{job}")
    assert {i["type"]["S"] for i in items} == {"message", "metrics"}
    for item in items:
        assert item["id"]["S"].startswith("ftevent-") and len(item["id"]["S"]) == 8 + 24
        assert item["eventKey"]["S"].startswith("evt#") and len(item["eventKey"]["S"].split("#")[1]) == 13
        assert item["level"]["S"] in ("info", "warn", "error") and "N" in item["createdAt"]
    evals = [i["data"]["M"] for i in items if i["type"]["S"] == "metrics" and "valid_loss" in i["data"]["M"]]
    assert evals and {
        "step",
        "total_steps",
        "epoch",
        "train_loss",
        "learning_rate",
        "tokens_per_second",
        "eta_seconds",
        "valid_mean_token_accuracy",
    } <= set(evals[-1])
    job_item = dynamo.get_item(TableName=jobs, Key={"tenantId": {"S": TENANT}, "jobId": {"S": job}})["Item"]
    assert int(job_item["trainedTokens"]["N"]) > 0 and int(job_item["updatedAt"]["N"]) > 0
    assert job_item["status"]["S"] == "running"  # the API side owns the status

    again = _entrypoint(env)
    assert again.returncode == 0 and "already complete" in again.stdout

    foreign = _entrypoint(
        {**env, "TRAINING_FILE_URI": f"s3://{bucket}/tenants/tn_someoneelse/files/train.jsonl"}
    )
    assert foreign.returncode == 2
    assert "outside this tenant" in foreign.stderr
    errors = _query(dynamo, events, f"{TENANT}#{job}")
    assert any(i["level"]["S"] == "error" and "outside this tenant" in i["message"]["S"] for i in errors)

    elsewhere = f"s3://{bucket}/tenants/{TENANT}/jobs/ftjob-missing/"
    missing = _entrypoint(
        {**env, "BASE_MODEL_URI": f"s3://{bucket}/base-models/nothing/", "OUTPUT_URI": elsewhere}
    )
    assert missing.returncode == 2 and "no weights" in missing.stderr
