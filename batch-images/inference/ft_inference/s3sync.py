"""Copies an S3 prefix to a local directory (boto3; AWS_ENDPOINT_URL means LocalStack, path-style)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path" if endpoint else "auto"})
    )


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
    count = download_prefix(uri, dest)
    if count == 0:
        sys.exit(f"nothing under {uri}")
    print(f"{count} files from {uri} in {dest}", flush=True)


if __name__ == "__main__":
    main()
