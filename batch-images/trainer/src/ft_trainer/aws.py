"""Where the trainer's AWS clients point: one place for the endpoint and the region."""

from __future__ import annotations

import os


def client_options() -> dict[str, str | None]:
    """`endpoint_url` (AWS_ENDPOINT_URL: LocalStack) and `region_name` for boto3 clients and resources.

    boto3 reads only AWS_DEFAULT_REGION, while the AWS SDK for JavaScript and the Lambda runtime read
    AWS_REGION: Batch and ECS set both, but a process started by the local platform may have only the
    latter, so the region falls back from one to the other (None: boto3's own lookup, e.g. a profile).
    """
    return {
        "endpoint_url": os.environ.get("AWS_ENDPOINT_URL") or None,
        "region_name": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
    }
