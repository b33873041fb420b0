"""What a failed job tells its tenant: its own input's problems and out of memory as they are, anything
else as an internal error with a reference; the details go to the operator's log only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ft_trainer import entrypoint
from ft_trainer.config import ConfigError
from ft_trainer.failures import OUT_OF_MEMORY, TenantFacingError, classify, operator_report

JOB = "ftjob-abc123"
SECRET = "s3://ft-artifacts-123456789012/tenants/tn_other/jobs/x/ botocore endpoint 10.0.3.7"


def test_the_tenant_reads_its_own_input_problems_verbatim() -> None:
    failure = classify(ConfigError("train.jsonl line 3: messages must be a list"), JOB)
    assert failure.message == "Bad input: train.jsonl line 3: messages must be a list"
    assert failure.exit_code == 2
    assert isinstance(ConfigError("x"), TenantFacingError) and isinstance(ConfigError("x"), ValueError)


def test_the_tenant_reads_out_of_memory_with_the_advice() -> None:
    failure = classify(
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB on GPU 0"), JOB, out_of_memory=True
    )
    assert failure.message == OUT_OF_MEMORY
    assert "batch_size" in failure.message and "CUDA" not in failure.message
    assert failure.exit_code == 3


@pytest.mark.parametrize(
    "error",
    [RuntimeError(SECRET), KeyError(SECRET), OSError(5, SECRET), ValueError(SECRET), Exception(SECRET)],
)
def test_any_other_error_reaches_the_tenant_as_an_internal_error_with_the_job_as_reference(
    error: Exception,
) -> None:
    failure = classify(error, JOB)
    assert failure.message == f"Training failed due to an internal error (reference {JOB})"
    assert failure.exit_code == 1
    assert "tn_other" not in failure.message and type(error).__name__ not in failure.message


def test_the_operator_gets_the_type_the_message_and_the_traceback_under_the_job_id() -> None:
    try:
        raise RuntimeError(SECRET)
    except RuntimeError as error:
        report = operator_report(error, JOB)
    assert report.startswith(f"[job {JOB}] RuntimeError: {SECRET}")
    assert "Traceback (most recent call last)" in report and "test_failures.py" in report


def _fail_with(
    error: BaseException, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Runs the container's main() with run() raising `error`: (exit code, stdout events, stderr)."""
    monkeypatch.setenv("JOB_ID", JOB)
    config = SimpleNamespace(job_id=JOB, tenant_id="tn_a", method="lora", events_table=None, jobs_table=None)
    monkeypatch.setattr(entrypoint, "from_environment", lambda: config)

    def run(*_: object, **__: object) -> dict[str, object]:
        raise error

    monkeypatch.setattr(entrypoint, "run", run)
    with pytest.raises(SystemExit) as exited:
        entrypoint.main()
    out, err = capsys.readouterr()
    events = [line for line in out.splitlines() if line.startswith("[message:error]")]
    return exited.value.code, events, err


def test_the_container_reports_an_unexpected_exception_generically_and_logs_it_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("FT_WORK_DIR", str(tmp_path))
    code, events, err = _fail_with(RuntimeError(SECRET), monkeypatch, capsys)
    assert code == 1
    assert events == [f"[message:error] Training failed due to an internal error (reference {JOB})"]
    assert f"[job {JOB}] RuntimeError: {SECRET}" in err and "Traceback" in err


def test_the_container_reports_bad_input_verbatim(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("FT_WORK_DIR", str(tmp_path))
    code, events, _ = _fail_with(ConfigError("train.jsonl has no usable examples"), monkeypatch, capsys)
    assert code == 2
    assert events == ["[message:error] Bad input: train.jsonl has no usable examples"]


def test_the_container_reports_out_of_memory_with_the_advice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    monkeypatch.setenv("FT_WORK_DIR", str(tmp_path))
    code, events, _ = _fail_with(
        torch.OutOfMemoryError("CUDA out of memory on device 0"), monkeypatch, capsys
    )
    assert code == 3
    assert events == [f"[message:error] {OUT_OF_MEMORY}"]
