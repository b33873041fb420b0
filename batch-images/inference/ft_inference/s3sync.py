"""Copies an S3 prefix to a local directory (boto3; AWS_ENDPOINT_URL means LocalStack, path-style).

A tenant's artifact (an adapter the proxy loads, a full model a deployment serves) is read with
credentials scoped to that tenant when TENANT_READER_ROLE_ARN names the tenant-scoped reader role
(infra/constructs/tenant-scope.ts): the task role may only assume it, with the session tag `tenantId`
taken from the URI's `tenants/{tenantId}/` prefix, and the role's policy reaches only that tenant's keys.
The chat function checked that the model is the caller's; this keeps a bug there, or here, from reading
another tenant's prefix. Without the variable (the local platform, tests) the default credentials read.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TENANT_READER_ROLE_ENV = "TENANT_READER_ROLE_ARN"
# The session tag the reader role's policy names (`${aws:PrincipalTag/tenantId}`).
TENANT_TAG = "tenantId"
# Sessions are kept per tenant until this close to their expiry (role chaining caps them at one hour).
REFRESH_BEFORE_SECONDS = 300


def s3_client(credentials: dict[str, str] | None = None) -> Any:
    """An S3 client; with `credentials` (access key, secret, session token) instead of the default chain."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path" if endpoint else "auto"}),
        **(credentials or {}),
    )


def tenant_of(uri: str) -> str | None:
    """The tenant whose prefix (`tenants/{tenantId}/`, contract/platform.json) holds `uri`'s key."""
    from ft_contract import load_platform

    if not uri.startswith("s3://"):
        return None
    key = uri[5:].partition("/")[2]
    before, _, after = load_platform().s3["tenantPrefix"].partition("{tenantId}")
    if not key.startswith(before):
        return None
    tenant, found, _ = key[len(before) :].partition(after)
    return tenant if found and tenant not in ("", ".", "..") else None


class TenantScopedReader:
    """S3 clients with one tenant's credentials: the reader role assumed with the tenant's session tag,
    once per tenant and again when the session is near its expiry."""

    def __init__(
        self,
        role_arn: str,
        sts: Any | None = None,
        make_client: Callable[[dict[str, str]], Any] = s3_client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role_arn = role_arn
        self._sts = sts
        self._make_client = make_client
        self._clock = clock
        self._clients: dict[str, tuple[Any, float]] = {}
        # download() runs in worker threads (the proxy's asyncio.to_thread).
        self._lock = threading.Lock()

    def client_for(self, tenant_id: str) -> Any:
        with self._lock:
            cached = self._clients.get(tenant_id)
            if cached is not None and cached[1] - self._clock() > REFRESH_BEFORE_SECONDS:
                return cached[0]
            if self._sts is None:
                import boto3

                self._sts = boto3.client("sts", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
            assumed = self._sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName=re.sub(r"[^\w+=,.@-]", "-", f"adapters-{tenant_id}")[:64],
                Tags=[{"Key": TENANT_TAG, "Value": tenant_id}],
                TransitiveTagKeys=[TENANT_TAG],
            )["Credentials"]
            client = self._make_client(
                {
                    "aws_access_key_id": assumed["AccessKeyId"],
                    "aws_secret_access_key": assumed["SecretAccessKey"],
                    "aws_session_token": assumed["SessionToken"],
                }
            )
            self._clients[tenant_id] = (client, assumed["Expiration"].timestamp())
            return client

    def download(self, uri: str, dest: Path) -> int:
        """download_prefix() with the credentials of the tenant whose prefix holds `uri`; a URI outside
        every tenant's prefix is refused."""
        tenant = tenant_of(uri)
        if tenant is None:
            raise PermissionError(f"{uri!r} is not under a tenant's prefix")
        return download_prefix(uri, dest, self.client_for(tenant))


def default_downloader() -> Callable[[str, Path], int]:
    """The proxy's and the weight sync's downloader: tenant-scoped when TENANT_READER_ROLE_ARN is set."""
    role = os.environ.get(TENANT_READER_ROLE_ENV)
    return TenantScopedReader(role).download if role else download_prefix


def download_prefix(uri: str, dest: Path, client: Any | None = None) -> int:
    """Every object under `s3://bucket/prefix/` into `dest`; the number of files (0: no such prefix)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    prefix = key.rstrip("/") + "/"
    s3 = client or s3_client()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if not relative or relative.endswith("/") or ".." in relative.split("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            count += 1
    return count


def main() -> None:
    """`python -m ft_inference.s3sync s3://bucket/prefix/ DIR`: the entrypoint's weight sync."""
    import sys

    uri, dest = sys.argv[1], Path(sys.argv[2])
    # The served weights: a base model's with the task role, a tenant's full model with its tenant's
    # scoped credentials (when the deployment names the reader role).
    scoped = os.environ.get(TENANT_READER_ROLE_ENV) and tenant_of(uri) is not None
    count = default_downloader()(uri, dest) if scoped else download_prefix(uri, dest)
    if count == 0:
        sys.exit(f"nothing under {uri}")
    print(f"{count} files from {uri} in {dest}", flush=True)


if __name__ == "__main__":
    main()
