"""Reading and writing job data: `s3://bucket/key` URIs (S3 or LocalStack) or local directories."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ft_contract import load_platform

from .aws import client, client_options
from .config import ConfigError


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def child(self, name: str) -> "S3Uri":
        return S3Uri(self.bucket, self.key.rstrip("/") + "/" + name if self.key else name)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3(uri: str) -> S3Uri | None:
    if not uri.startswith("s3://"):
        return None
    rest = uri[5:]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"malformed S3 URI {uri!r}")
    return S3Uri(bucket, key)


def check_tenant_uri(uri: str, tenant_id: str, what: str) -> S3Uri:
    """Training, validation and output URIs must be S3 keys under `tenants/{tenant}/`: a job can never
    read or write another tenant's data, whatever its configuration says."""
    parsed = parse_s3(uri)
    prefix = load_platform().tenant_prefix(tenant_id)
    if parsed is None or not parsed.key.startswith(prefix) or ".." in parsed.key.split("/"):
        raise ConfigError(f"{what} {uri!r} is outside this tenant's prefix s3://<bucket>/{prefix}")
    return parsed


def check_base_model_uri(uri: str, weights_prefix: str | None = None) -> S3Uri | Path:
    """Base models are shared: under the catalog entry's weights prefix when the job names one
    (BASE_MODEL_SPEC), else `s3://<bucket>/base-models/...`; or a local directory (local platform)."""
    parsed = parse_s3(uri)
    if parsed is not None:
        shared = weights_prefix or load_platform().s3["baseModelsPrefix"]
        if not parsed.key.startswith(shared) or ".." in parsed.key.split("/"):
            raise ConfigError(f"base model {uri!r} must be under s3://<bucket>/{shared}")
        return parsed
    path = Path(uri.removeprefix("file://"))
    if not path.is_dir():
        raise ConfigError(f"base model directory {path} does not exist")
    return path


def s3_client() -> Any:
    """The S3 client of the process's session (tenant-scoped on AWS: aws.py)."""
    from botocore.config import Config

    # Path-style against LocalStack: its virtual-host names would need DNS.
    style = "path" if client_options()["endpoint_url"] else "auto"
    return client("s3", config=Config(s3={"addressing_style": style}))


class ObjectStore:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def download_file(self, uri: S3Uri, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(uri.bucket, uri.key, str(dest))
        except Exception as error:  # botocore raises ClientError with a 404 code
            if "404" in str(error) or "NoSuchKey" in str(error) or "Not Found" in str(error):
                raise ConfigError(f"{uri} does not exist") from error
            raise
        return dest

    def download_validated(self, uri: S3Uri, dest: Path, etag: str | None, what: str) -> Path:
        """A dataset the platform validated: with `etag`, only the object that has it (GetObject with
        If-Match), so a job never trains on bytes that replaced the validated ones; any other object
        under the key is bad input (ChangedInputError). Without one (a job from before the platform
        recorded ETags), whatever the key holds."""
        if etag is None:
            return self.download_file(uri, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            body = self.client.get_object(Bucket=uri.bucket, Key=uri.key, IfMatch=_quoted(etag))["Body"]
        except Exception as error:
            code = _error_code(error)
            if code in ("PreconditionFailed", "412"):
                raise ChangedInputError(
                    f"the {what} changed after it was validated; upload it again as a new file and "
                    "create a new job with it"
                ) from error
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ConfigError(f"the {what} no longer exists; it may have been deleted") from error
            raise
        partial = dest.with_name(dest.name + ".part")
        try:
            with partial.open("wb") as out:
                shutil.copyfileobj(body, out, 8 * 1024 * 1024)
        finally:
            body.close()
        partial.replace(dest)
        return dest

    def download_prefix(self, uri: S3Uri, dest: Path) -> int:
        """Every object under the prefix; 0 when there is none."""
        count = 0
        prefix = uri.key.rstrip("/") + "/"
        for key in self.list_keys(S3Uri(uri.bucket, prefix)):
            self.download_file(S3Uri(uri.bucket, key), dest / key[len(prefix) :])
            count += 1
        return count

    def list_keys(self, uri: S3Uri) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=uri.bucket, Prefix=uri.key):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def upload_dir(self, local: Path, uri: S3Uri, last: str | None = None) -> None:
        """Uploads a directory; `last` (a file name) goes up after all others: its presence marks the
        upload complete for readers."""
        files = sorted(p for p in local.rglob("*") if p.is_file())
        ordered = [p for p in files if p.name != last] + [p for p in files if p.name == last]
        for path in ordered:
            self.client.upload_file(str(path), uri.bucket, uri.child(str(path.relative_to(local))).key)

    def upload_file(self, local: Path, uri: S3Uri) -> None:
        self.client.upload_file(str(local), uri.bucket, uri.key)

    def put_text(self, uri: S3Uri, text: str) -> None:
        self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=text.encode())

    def get_text(self, uri: S3Uri) -> str | None:
        """The object's text, or None when there is no such object."""
        try:
            body = self.client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
        except Exception as error:
            if "NoSuchKey" in str(error) or "404" in str(error) or "Not Found" in str(error):
                return None
            raise
        return str(body.decode("utf-8"))

    def exists(self, uri: S3Uri) -> bool:
        try:
            self.client.head_object(Bucket=uri.bucket, Key=uri.key)
            return True
        except Exception:
            return False


class ChangedInputError(ConfigError):
    """A dataset's object is not the one the platform validated (its ETag differs): bad input."""


def _quoted(etag: str) -> str:
    """S3 answers ETags in double quotes; an If-Match header carries them the same way."""
    return etag if etag.startswith('"') else f'"{etag}"'


def _error_code(error: Exception) -> str:
    """A botocore ClientError's code (`PreconditionFailed`, `NoSuchKey`, or the HTTP status)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return ""


def copy_tree(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
