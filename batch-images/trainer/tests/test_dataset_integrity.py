"""A job trains the exact object the platform validated: datasets are downloaded with If-Match on the
ETag the validator recorded (TRAINING_FILE_ETAG / VALIDATION_FILE_ETAG), and any other object under the
key fails the job as bad input (exit 2) with a message the tenant can act on."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ft_trainer.config import ConfigError, from_environment
from ft_trainer.storage import ChangedInputError, ObjectStore, S3Uri

TENANT = "tn_0123456789abcdef"
KEY = f"tenants/{TENANT}/files/file-001k892a2fse5r8e5481r.jsonl"
VALIDATED = b'{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'


class StandInS3:
    """The GetObject of one object whose ETag is `etag`, answering 412 to any other If-Match as S3 does."""

    def __init__(self, body: bytes, etag: str) -> None:
        self.body, self.etag = body, etag
        self.calls: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls.append(kwargs)
        if "IfMatch" in kwargs and kwargs["IfMatch"] != self.etag:
            raise ClientError(
                {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions"}},
                "GetObject",
            )
        return {"Body": io.BytesIO(self.body), "ETag": self.etag}


def test_downloads_the_validated_object_with_if_match(tmp_path: Path) -> None:
    s3 = StandInS3(VALIDATED, '"abc"')
    dest = ObjectStore(s3).download_validated(
        S3Uri("ds", KEY), tmp_path / "train.jsonl", '"abc"', "training file"
    )
    assert dest.read_bytes() == VALIDATED
    assert s3.calls == [{"Bucket": "ds", "Key": KEY, "IfMatch": '"abc"'}]
    # An ETag as S3 event notifications spell it (no quotes) is sent quoted, as S3 answers it.
    ObjectStore(s3).download_validated(S3Uri("ds", KEY), tmp_path / "again.jsonl", "abc", "training file")
    assert s3.calls[-1]["IfMatch"] == '"abc"'


def test_refuses_another_object_as_bad_input_without_writing_it(tmp_path: Path) -> None:
    s3 = StandInS3(b"replaced", '"other"')
    with pytest.raises(ChangedInputError, match="the training file changed after it was validated") as caught:
        ObjectStore(s3).download_validated(
            S3Uri("ds", KEY), tmp_path / "train.jsonl", '"abc"', "training file"
        )
    # Bad input (exit code invalidInput), and no bucket or key in what the tenant reads.
    assert isinstance(caught.value, ConfigError)
    assert "ds" not in str(caught.value).split() and KEY not in str(caught.value)
    assert not (tmp_path / "train.jsonl").exists()


def test_reads_the_etags_from_the_environment() -> None:
    base = {
        "JOB_ID": "j",
        "TENANT_ID": TENANT,
        "METHOD": "lora",
        "BASE_MODEL_URI": "/m",
        "TRAINING_FILE_URI": f"s3://ds/{KEY}",
        "OUTPUT_URI": "s3://b/o",
    }
    assert from_environment(base).training_file_etag is None
    config = from_environment({**base, "TRAINING_FILE_ETAG": '"t"', "VALIDATION_FILE_ETAG": '"v"'})
    assert (config.training_file_etag, config.validation_file_etag) == ('"t"', '"v"')


@pytest.mark.localstack
def test_against_s3_trains_only_the_validated_bytes_and_fails_a_changed_file_with_exit_code_2(
    tmp_path: Path,
) -> None:
    import boto3
    from botocore.config import Config

    # Prepare: a tenant's file as validated, its ETag recorded.
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or pytest.fail("AWS_ENDPOINT_URL is unset")
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    bucket = f"trainer-integrity-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    validated_etag = s3.put_object(Bucket=bucket, Key=KEY, Body=VALIDATED)["ETag"]
    store, uri = ObjectStore(s3), S3Uri(bucket, KEY)

    # The validated object downloads, by its ETag with or without quotes.
    assert (
        store.download_validated(uri, tmp_path / "a.jsonl", validated_etag, "training file").read_bytes()
        == VALIDATED
    )
    assert store.download_validated(
        uri, tmp_path / "b.jsonl", validated_etag.strip('"'), "training file"
    ).exists()

    # Act: other bytes of the same size replace it under the same key.
    s3.put_object(Bucket=bucket, Key=KEY, Body=VALIDATED.upper())

    # Assess: the download refuses them; the container exits 2 (invalidInput) before any weights.
    with pytest.raises(ChangedInputError, match="changed after it was validated"):
        store.download_validated(uri, tmp_path / "c.jsonl", validated_etag, "training file")
    env = {
        "JOB_ID": "ftjob-integrity",
        "TENANT_ID": TENANT,
        "METHOD": "lora",
        "MODEL_FAMILY": "chatml",
        "BASE_MODEL_URI": f"s3://{bucket}/base-models/none/",
        "TRAINING_FILE_URI": f"s3://{bucket}/{KEY}",
        "TRAINING_FILE_ETAG": validated_etag,
        "OUTPUT_URI": f"s3://{bucket}/tenants/{TENANT}/jobs/ftjob-integrity/",
        "HYPERPARAMETERS": "{}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ft_trainer.entrypoint"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Bad input: the training file changed after it was validated" in done.stderr
