"""What a failed job tells its tenant, and what only the operator sees.

A job's error event becomes the job's `error.message` (lambdas/job-status/apply.ts), which the tenant
reads. Only failures the trainer marks as tenant-facing reach it verbatim: a TenantFacingError
(ConfigError: the job's own input — its training file, its configuration, its base model's files) and
running out of memory, with the advice that helps. Anything else is the platform's problem: the tenant
gets a generic message with the job id as the reference, while the type, the message and the traceback
go to the operator's log (stderr: the Batch job's CloudWatch log stream) under that id. An exception's
own text may name buckets, keys, hosts, library internals or another system's response; none of it is
the tenant's to see.

Pure (no torch, no AWS): the entrypoint decides whether an error is an out-of-memory one.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ft_contract import load_platform

OUT_OF_MEMORY = "Out of memory: lower batch_size or max_seq_length, or enable gradient_checkpointing"


class TenantFacingError(Exception):
    """An error whose message is written for the tenant: it reaches the job's error verbatim."""


def internal_error_message(job_id: str | None) -> str:
    return f"Training failed due to an internal error (reference {job_id or 'unknown'})"


@dataclass(frozen=True)
class Failure:
    """The tenant's message and the process's exit code (contract/platform.json `exitCodes`)."""

    message: str
    exit_code: int


def classify(error: BaseException, job_id: str | None, *, out_of_memory: bool = False) -> Failure:
    """The tenant's view of `error`: bad input (exit 2) and out of memory (exit 3) as they are, anything
    else as an internal error with the job id as its reference (exit 1)."""
    contract = load_platform()
    if isinstance(error, TenantFacingError):
        return Failure(f"Bad input: {error}", contract.exit_code("invalidInput"))
    if out_of_memory:
        return Failure(OUT_OF_MEMORY, contract.exit_code("outOfMemory"))
    return Failure(internal_error_message(job_id), contract.exit_code("failed"))


def operator_report(error: BaseException, job_id: str | None) -> str:
    """Everything about `error` for the operator's log, under the job id it can be found by."""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"[job {job_id or 'unknown'}] {type(error).__name__}: {error}\n{trace}"
