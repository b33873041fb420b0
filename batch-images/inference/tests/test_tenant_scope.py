"""Adapters are read with credentials scoped to their tenant: the reader role assumed with the tenant's
session tag (a stubbed STS: LocalStack does not enforce IAM; test/infra checks the role's policy)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from ft_inference import s3sync
from ft_inference.proxy import Proxy
from ft_inference.routing import Deployment
from ft_inference.s3sync import TenantScopedReader, tenant_of

ROLE = "arn:aws:iam::123456789012:role/ft-ChatInferenceTenantAdapterReaderRole"
ADAPTER = "s3://artifacts/tenants/t1/jobs/ftjob-1/adapter/"
NOW = 1_800_000_000.0


class FakeS3:
    """list_objects_v2 pages and download_file, for one adapter; remembers who it was built for."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.listed: list[str] = []

    def get_paginator(self, _: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:  # noqa: N803 — boto3's names
                fake.listed.append(f"s3://{Bucket}/{Prefix}")
                return [{"Contents": [{"Key": Prefix + "adapter_config.json"}]}]

        return Pages()

    def download_file(self, bucket: str, key: str, target: str) -> None:
        Path(target).write_text("{}")


def _sts() -> Any:
    return botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", aws_access_key_id="AKIATASKROLE", aws_secret_access_key="x"
    )


def _assumed(key: str, expires_at: float) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": f"{key}-secret",
            "SessionToken": f"{key}-token",
            "Expiration": datetime.fromtimestamp(expires_at, timezone.utc),
        }
    }


def _call(tenant: str) -> dict[str, Any]:
    return {
        "RoleArn": ROLE,
        "RoleSessionName": f"adapters-{tenant}",
        "Tags": [{"Key": "tenantId", "Value": tenant}],
        "TransitiveTagKeys": ["tenantId"],
    }


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_the_tenant_comes_from_the_uris_tenant_prefix_only() -> None:
    assert tenant_of(ADAPTER) == "t1"
    assert tenant_of("s3://artifacts/tenants/tn_0a/jobs/j/model/") == "tn_0a"
    for outside in (
        "s3://artifacts/base-models/tiny-chat/",
        "s3://artifacts/tenants/",
        "s3://artifacts/tenants//jobs/x/",
        "s3://artifacts/tenants/../jobs/x/",
        "s3://artifacts/x/tenants/t1/jobs/j/adapter/",
        "/local/tenants/t1/",
    ):
        assert tenant_of(outside) is None, outside


def test_an_adapter_is_read_with_its_tenants_credentials_assumed_once_per_tenant(tmp_path: Path) -> None:
    sts, clock, built = _sts(), Clock(), []

    def make(credentials: dict[str, str]) -> FakeS3:
        built.append(FakeS3(credentials))
        return built[-1]

    reader = TenantScopedReader(ROLE, sts=sts, make_client=make, clock=clock)
    with Stubber(sts) as stub:
        stub.add_response("assume_role", _assumed("ASIATENANTONE00001", NOW + 3600), _call("t1"))
        stub.add_response("assume_role", _assumed("ASIATENANTTWO00001", NOW + 3600), _call("t2"))
        assert reader.download(ADAPTER, tmp_path / "a") == 1
        assert reader.download("s3://artifacts/tenants/t1/jobs/ftjob-2/adapter/", tmp_path / "b") == 1
        assert reader.download("s3://artifacts/tenants/t2/jobs/ftjob-3/adapter/", tmp_path / "c") == 1
        stub.assert_no_pending_responses()
    # One session for t1 (cached), one for t2; each tenant's listing with its own credentials.
    assert [c.credentials["aws_access_key_id"] for c in built] == ["ASIATENANTONE00001", "ASIATENANTTWO00001"]
    assert built[0].credentials["aws_session_token"] == "ASIATENANTONE00001-token"
    assert built[0].listed == [ADAPTER, "s3://artifacts/tenants/t1/jobs/ftjob-2/adapter/"]
    assert built[1].listed == ["s3://artifacts/tenants/t2/jobs/ftjob-3/adapter/"]


def test_a_tenants_session_is_assumed_again_near_its_expiry(tmp_path: Path) -> None:
    sts, clock = _sts(), Clock()
    reader = TenantScopedReader(ROLE, sts=sts, make_client=FakeS3, clock=clock)
    with Stubber(sts) as stub:
        stub.add_response("assume_role", _assumed("ASIAFIRSTSESSION01", NOW + 3600), _call("t1"))
        stub.add_response("assume_role", _assumed("ASIASECONDSESSION1", NOW + 7200), _call("t1"))
        first = reader.client_for("t1")
        clock.now = NOW + 3600 - 600  # ten minutes left: still good
        assert reader.client_for("t1") is first
        clock.now = NOW + 3600 - 120  # two minutes left: a new session
        assert reader.client_for("t1").credentials["aws_access_key_id"] == "ASIASECONDSESSION1"
        stub.assert_no_pending_responses()


def test_a_uri_outside_every_tenants_prefix_is_refused_without_credentials(tmp_path: Path) -> None:
    reader = TenantScopedReader(ROLE, sts=_sts(), make_client=FakeS3)
    with Stubber(reader._sts):  # no response queued: an AssumeRole would fail the test
        with pytest.raises(PermissionError, match="not under a tenant's prefix"):
            reader.download("s3://artifacts/base-models/tiny-chat/", tmp_path / "x")


def test_the_proxy_loads_adapters_through_the_reader_when_the_role_is_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(s3sync.TENANT_READER_ROLE_ENV, ROLE)
    proxy = Proxy(Deployment("tiny-chat", "tiny-chat", None), tmp_path)
    downloader = proxy.downloader
    assert getattr(downloader, "__self__", None).__class__ is TenantScopedReader
    monkeypatch.delenv(s3sync.TENANT_READER_ROLE_ENV)
    assert Proxy(Deployment("tiny-chat", "tiny-chat", None), tmp_path).downloader is s3sync.download_prefix


def test_the_proxys_download_uses_the_adapters_tenant(tmp_path: Path) -> None:
    sts = _sts()
    reader = TenantScopedReader(ROLE, sts=sts, make_client=FakeS3)
    proxy = Proxy(Deployment("tiny-chat", "tiny-chat", None), tmp_path, downloader=reader.download)
    with Stubber(sts) as stub:
        stub.add_response("assume_role", _assumed("ASIATENANTONE00001", NOW * 2), _call("t1"))
        proxy._download(ADAPTER, tmp_path / "adapter")
        stub.assert_no_pending_responses()
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
