"""The trainer's AWS clients: one place for the endpoint, the region and the credentials.

On AWS, every training job works with credentials scoped to its own tenant: the job role may only
assume the tenant-scoped role that TENANT_ROLE_ARN names (infra/constructs/tenant-scope.ts), with the
session tags `tenantId` and `jobId` from the job's environment (TENANT_ID, JOB_ID), and that role's
policies reach only the tagged tenant's keys and items. The role is assumed once per process, before
the first client is built; the credentials refresh themselves before they expire (role chaining caps a
session at one hour, a run may take a day). Without TENANT_ROLE_ARN (the local platform, tests) the
clients use the default credential chain, as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

TENANT_ROLE_ENV = "TENANT_ROLE_ARN"
# The session tag keys the tenant-scoped role's policies name (`${aws:PrincipalTag/tenantId}`).
TENANT_TAG, JOB_TAG = "tenantId", "jobId"
# Role chaining allows at most one hour; botocore refreshes 15 minutes before the expiry.
SESSION_SECONDS = 3600

_session: Any | None = None


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


def assume_role_request(role_arn: str, tenant_id: str, job_id: str) -> dict[str, Any]:
    """The AssumeRole call of a job's session: the tags its role's policies and trust policy require.

    Transitive tags: a role chained from this session would keep the tenant and could not be given
    another one."""
    if not tenant_id or not job_id:
        raise ValueError("a tenant-scoped session needs TENANT_ID and JOB_ID")
    return {
        "RoleArn": role_arn,
        # Shown in CloudTrail beside the tags; [\w+=,.@-]{2,64}.
        "RoleSessionName": re.sub(r"[^\w+=,.@-]", "-", f"trainer-{job_id}")[:64],
        "DurationSeconds": SESSION_SECONDS,
        "Tags": [{"Key": TENANT_TAG, "Value": tenant_id}, {"Key": JOB_TAG, "Value": job_id}],
        "TransitiveTagKeys": [TENANT_TAG, JOB_TAG],
    }


def scoped_session(role_arn: str, tenant_id: str, job_id: str, sts: Any | None = None) -> Any:
    """A boto3 Session whose credentials are the tenant-scoped role's, assumed now (a role that cannot
    be assumed fails the job at its start) and again before each expiry. `sts`: the client that assumes
    it (the container's own credentials); tests pass a stubbed one."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    options = client_options()
    sts = sts or boto3.client("sts", **options)
    request = assume_role_request(role_arn, tenant_id, job_id)

    def fetch() -> dict[str, str]:
        credentials = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    refreshable = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    core = botocore.session.get_session()
    # botocore has no public setter for a session's credentials object; this is how its own
    # AssumeRole provider's credentials end up on a session too.
    core._credentials = refreshable
    return boto3.Session(botocore_session=core, region_name=options["region_name"])


def session(env: Mapping[str, str] = os.environ, sts: Any | None = None) -> Any:
    """The process's boto3 Session: tenant-scoped when TENANT_ROLE_ARN is set, else the default one.
    Built on first use and kept: every client of the process shares its credentials."""
    global _session
    if _session is None:
        import boto3

        role = env.get(TENANT_ROLE_ENV)
        if role:
            _session = scoped_session(role, env.get("TENANT_ID", ""), env.get("JOB_ID", ""), sts)
        else:
            _session = boto3.Session(region_name=client_options()["region_name"])
    return _session


def reset_session() -> None:
    """Forgets the process's session (tests)."""
    global _session
    _session = None


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client of the process's session, at the platform's endpoint and region."""
    return session().client(service, **{**client_options(), **kwargs})


def resource(service: str, **kwargs: Any) -> Any:
    """A boto3 resource of the process's session, at the platform's endpoint and region."""
    return session().resource(service, **{**client_options(), **kwargs})
