"""entrypoint.sh's vLLM command line, with `vllm` and the proxy replaced by stubs: the LoRA server's
rank limit comes from the catalog, and a full-parameter model started by its deployer with its
environment set directly is served under its code, in its family's chat template, without LoRA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ft_contract import load_catalog

HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parents[1]

if shutil.which("bash") is None:
    pytest.skip("needs bash", allow_module_level=True)


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """entrypoint.sh with the weights already in MODEL_DIR (no S3 sync); `vllm` writes its arguments
    to tmp_path/vllm-args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "vllm-args"
    (bin_dir / "vllm").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{args_file}"\n')
    # python3 runs this interpreter, except the proxy, which only has to wait to be stopped.
    (bin_dir / "python3").write_text(
        '#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "ft_inference.proxy" ]; then exec sleep 30; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    model_dir = tmp_path / "weights"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": f"{HERE}:{REPO / 'contract' / 'python'}",
        "MODEL_DIR": str(model_dir),
        "CHAT_TEMPLATES_DIR": str(HERE / "chat-templates"),
        **env,
    }
    return subprocess.run(
        ["bash", str(HERE / "entrypoint.sh")], env=environment, capture_output=True, text=True, timeout=60
    )


def vllm_args(tmp_path: Path, **env: str) -> list[str]:
    result = run(tmp_path, **env)
    # vLLM's stub exits at once: the entrypoint stops the proxy and exits non-zero, as when vLLM dies.
    assert result.returncode == 1, result.stderr
    return (tmp_path / "vllm-args").read_text().splitlines()


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_lora_server_takes_the_largest_rank_the_catalog_allows(tmp_path: Path) -> None:
    args = vllm_args(
        tmp_path, BASE_MODEL="qwen2.5-7b-instruct", BASE_MODEL_URI="s3://b/w/", MODEL_FAMILY="chatml"
    )

    assert "--enable-lora" in args
    assert option(args, "--max-lora-rank") == str(load_catalog().max_lora_rank) == "64"
    assert option(args, "--served-model-name") == "qwen2.5-7b-instruct"
    assert option(args, "--chat-template") == str(HERE / "chat-templates" / "chatml.jinja")


def test_max_lora_rank_still_overrides_the_catalog(tmp_path: Path) -> None:
    args = vllm_args(tmp_path, BASE_MODEL="tiny-chat", BASE_MODEL_URI="s3://b/w/", MAX_LORA_RANK="32")

    assert option(args, "--max-lora-rank") == "32"


def test_a_full_model_started_with_its_environment_is_served_under_its_code(tmp_path: Path) -> None:
    args = vllm_args(
        tmp_path,
        BASE_MODEL="glm-4-9b-chat",
        SERVED_MODEL_NAME="support-bot",
        MODEL_ARTIFACT_URI="s3://artifacts/tenants/t1/jobs/ftjob-9/model/",
        MODEL_FAMILY="glm4",
        TENSOR_PARALLEL_SIZE="2",
    )

    assert option(args, "--served-model-name") == "support-bot"
    assert option(args, "--tensor-parallel-size") == "2"
    assert option(args, "--chat-template") == str(HERE / "chat-templates" / "glm4.jinja")
    assert "--enable-lora" not in args and "--max-lora-rank" not in args


def test_a_family_without_a_template_is_refused_before_vllm_starts(tmp_path: Path) -> None:
    result = run(tmp_path, BASE_MODEL="tiny-chat", BASE_MODEL_URI="s3://b/w/", MODEL_FAMILY="nope")

    assert result.returncode == 1
    assert "no chat template for the family 'nope'" in result.stderr
    assert not (tmp_path / "vllm-args").exists()
