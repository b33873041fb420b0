"""The trainer's AWS clients: the region as the platform's processes set it, and credentials scoped to the
job's tenant (a stubbed STS: LocalStack does not enforce IAM; test/infra checks the role's policies)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import os
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from botocore.stub import Stubber

from ft_trainer import aws
from ft_trainer.aws import client_options
from ft_trainer.events import DynamoEventSink
from ft_trainer.storage import ObjectStore, S3Uri


def test_the_region_comes_from_aws_region_else_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert client_options() == {"endpoint_url": "http://127.0.0.1:4566", "region_name": "eu-west-1"}
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    assert client_options() == {"endpoint_url": None, "region_name": "ap-southeast-1"}
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert client_options()["region_name"] is None


# --- tenant-scoped credentials ---------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/ft-TrainingTenantScopedTrainerRole"
BASE = {"aws_access_key_id": "AKIAJOBROLE", "aws_secret_access_key": "job-secret"}


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    """The process's session is cached: no test may leave a scoped one to the others."""
    aws.reset_session()
    yield
    aws.reset_session()


def _sts() -> Any:
    """An STS client with the container's own (job role) credentials, to stub."""
    return botocore.session.get_session().create_client("sts", region_name="us-east-1", **BASE)


def _assumed(key: str, expires_in: timedelta) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": f"{key}-secret",
            "SessionToken": f"{key}-token",
            "Expiration": datetime.now(timezone.utc) + expires_in,
        },
        "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:trainer-ftjob-1", "Arn": f"{ROLE}/trainer-ftjob-1"},
        "PackedPolicySize": 3,
    }


EXPECTED_CALL = {
    "RoleArn": ROLE,
    "RoleSessionName": "trainer-ftjob-1",
    "DurationSeconds": 3600,
    "Tags": [{"Key": "tenantId", "Value": "tn_a"}, {"Key": "jobId", "Value": "ftjob-1"}],
    "TransitiveTagKeys": ["tenantId", "jobId"],
}


def _signed_with(client: Any, call: Callable[[], object]) -> str:
    """The access key id the client signs `call`'s request with (the request never leaves)."""
    seen: list[str] = []

    class Sent(Exception):
        pass

    def capture(request: Any, **_: object) -> None:
        header = request.headers["Authorization"]
        seen.append(header.decode() if isinstance(header, bytes) else header)
        raise Sent()

    client.meta.events.register_first("before-send", capture)
    with pytest.raises(Sent):
        call()
    return seen[0].split("Credential=")[1].split("/")[0]


def test_a_job_assumes_the_tenant_scoped_role_with_its_tenant_and_job_as_session_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    env = {"TENANT_ROLE_ARN": ROLE, "TENANT_ID": "tn_a", "JOB_ID": "ftjob-1"}
    sts = _sts()
    with Stubber(sts) as stub:
        stub.add_response("assume_role", _assumed("ASIASCOPEDEXAMPLE1", timedelta(hours=1)), EXPECTED_CALL)
        session = aws.session(env, sts=sts)
        stub.assert_no_pending_responses()
    # Assumed once, at the start: every client of the process signs with the scoped credentials.
    assert aws.session() is session
    s3 = ObjectStore().client
    assert _signed_with(s3, lambda: s3.head_object(Bucket="b", Key="tenants/tn_a/x")) == "ASIASCOPEDEXAMPLE1"
    dynamodb = aws.client("dynamodb")
    assert _signed_with(dynamodb, lambda: dynamodb.describe_limits()) == "ASIASCOPEDEXAMPLE1"
    events = DynamoEventSink("events", "tn_a", "ftjob-1")
    table_client = events._table.meta.client
    assert _signed_with(table_client, lambda: table_client.describe_limits()) == "ASIASCOPEDEXAMPLE1"


def test_the_scoped_credentials_are_assumed_again_before_they_expire() -> None:
    sts = _sts()
    with Stubber(sts) as stub:
        # Five minutes left: inside botocore's mandatory refresh window (ten minutes).
        stub.add_response("assume_role", _assumed("ASIAFIRSTEXAMPLE01", timedelta(minutes=5)), EXPECTED_CALL)
        stub.add_response("assume_role", _assumed("ASIASECONDEXAMPLE1", timedelta(hours=1)), EXPECTED_CALL)
        session = aws.scoped_session(ROLE, "tn_a", "ftjob-1", sts=sts)
        assert session.get_credentials().get_frozen_credentials().access_key == "ASIASECONDEXAMPLE1"
        stub.assert_no_pending_responses()


def test_a_role_that_cannot_be_assumed_fails_the_job_at_its_start() -> None:
    sts = _sts()
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:TagSession")
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            aws.scoped_session(ROLE, "tn_a", "ftjob-1", sts=sts)


def test_a_scoped_session_needs_the_tenant_and_the_job() -> None:
    with pytest.raises(ValueError, match="TENANT_ID and JOB_ID"):
        aws.assume_role_request(ROLE, "", "ftjob-1")
    # Session names allow [\w+=,.@-] only, at most 64 characters.
    name = aws.assume_role_request(ROLE, "tn_a", "ftjob:" + "x" * 80)["RoleSessionName"]
    assert len(name) == 64 and ":" not in name


def test_without_a_role_the_clients_use_the_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "default-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3 = aws.client("s3")
    assert _signed_with(s3, lambda: s3.head_object(Bucket="b", Key="k")) == "AKIADEFAULT"


@pytest.mark.localstack
def test_the_scoped_session_reads_and_writes_through_a_real_endpoint() -> None:
    """The wiring against LocalStack's STS and S3 (which enforce no IAM: test/infra checks the policies)."""
    env = {
        "TENANT_ROLE_ARN": "arn:aws:iam::000000000000:role/scoped",
        "TENANT_ID": "tn_a",
        "JOB_ID": "ftjob-1",
    }
    session = aws.session(env)
    assert session.get_credentials().get_frozen_credentials().access_key != os.environ.get(
        "AWS_ACCESS_KEY_ID"
    )
    store = ObjectStore()
    bucket = f"scoped-{secrets.token_hex(4)}"
    store.client.create_bucket(Bucket=bucket)
    uri = S3Uri(bucket, "tenants/tn_a/jobs/ftjob-1/result.json")
    store.put_text(uri, "{}")
    assert store.get_text(uri) == "{}"
