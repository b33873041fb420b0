"""DPO on the tiny model: the loss and rewards against TRL's, LoRA and full-parameter runs from the base
and from an SFT model (reference, per-step rewards, the shift towards the preferred answers), and a resume
that keeps the reference."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from conftest import ANSWERS, SHORT_RUN
from ft_trainer.chat_format import IGNORE, Message
from ft_trainer.config import ConfigError, parse_hyperparameters
from ft_trainer.dpo import dpo_loss, evaluate_preferences, preference_step, sequence_logps
from ft_trainer.events import PrintSink
from ft_trainer.generate import greedy_answer, load_for_inference
from ft_trainer.preferences import PreferenceDataset
from ft_trainer.records import TrainingRun
from ft_trainer.storage import ObjectStore, S3Uri
from ft_trainer.train import TrainRequest, TrainResult, resume, run_training, save, setup, train

# Each prompt's preferred answer is a distinctive one (conftest's), the non-preferred a generic one that
# is easier to learn: an SFT model trained on both answers mostly says the generic one.
PAIRS = [(q, a, f"Brisk lamp {20 + i}.") for i, (q, a) in enumerate(ANSWERS[:12])]
DPO_RUN: dict[str, object] = {**SHORT_RUN, "batch_size": 4, "metrics_interval_seconds": 0}
LN2 = math.log(2)
# Equal up to float32 rounding: the reference log-probabilities are computed at setup in batches of
# other lengths (other padding) than the step's, which moves sums of ~40 token log-probs by ~1e-6.
SAME = 1e-4


def write_preferences(path: Path, pairs: list[tuple[str, str, str]] = PAIRS) -> Path:
    lines = [
        {
            "input": {"messages": [{"role": "user", "content": q}]},
            "preferred_output": [{"role": "assistant", "content": chosen}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}],
        }
        for q, chosen, rejected in pairs
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_both_answers(path: Path, pairs: list[tuple[str, str, str]] = PAIRS) -> Path:
    """The SFT data before DPO: each prompt with both of its answers."""
    lines = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]}
        for q, chosen, rejected in pairs
        for answer in (chosen, rejected)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def request(
    method: str,
    tiny_model: Path,
    data: Path,
    out: Path,
    *,
    objective: str = "dpo",
    init: Path | None = None,
    validation: Path | None = None,
    **hp: object,
) -> TrainRequest:
    return TrainRequest(
        base_model=tiny_model,
        family="tiny",
        method=method,  # type: ignore[arg-type]
        objective=objective,  # type: ignore[arg-type]
        init_model=init,
        hyperparameters=parse_hyperparameters({**DPO_RUN, **hp}),
        training_file=data,
        validation_file=validation,
        output_dir=out,
        events=PrintSink(),
        device="cpu",
    )


def staged(req: TrainRequest) -> tuple[TrainingRun, TrainResult]:
    """run_training's stages, keeping the run (its data and model) for the checks."""
    run = setup(req)
    progress = resume(run)
    train(run, progress)
    return run, save(run, progress)


def steps(out: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "reward_accuracy" in line]


def count_model_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every model the code under test loads from disk."""
    from transformers import AutoModelForCausalLM

    loads: list[object] = []
    original = AutoModelForCausalLM.from_pretrained

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counting)
    return loads


@torch.no_grad()
def logps_of(model: Any, data: PreferenceDataset, pad_id: int) -> list[tuple[float, float]]:
    """Each pair's summed output log-probabilities under `model` (one pair per forward pass)."""
    model.eval()
    out = []
    for pair in data.examples:
        chosen, rejected, _ = sequence_logps(model, [pair], pad_id, "cpu")
        out.append((float(chosen[0]), float(rejected[0])))
    return out


def largest_difference(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p, q))


def preferring(values: list[tuple[float, float]]) -> int:
    """Pairs whose chosen output is the more probable one."""
    return sum(chosen > rejected for chosen, rejected in values)


def greedy_counts(
    tiny_model: Path, *, adapter: Path | None = None, full: Path | None = None
) -> tuple[int, int]:
    """Training prompts whose greedy answer is the preferred output, and those whose is the other one."""
    model, tokenizer = load_for_inference(tiny_model, adapter=adapter, full_model=full)
    answers = [greedy_answer(model, tokenizer, "tiny", [Message("user", q)]) for q, _, _ in PAIRS]
    print("greedy answers:", answers)
    return (
        sum(a == chosen for a, (_, chosen, _) in zip(answers, PAIRS)),
        sum(a == rejected for a, (_, _, rejected) in zip(answers, PAIRS)),
    )


def check_first_step_and_rise(out: Path) -> list[dict[str, Any]]:
    """The first step sees the reference itself (loss ln 2, rewards 0); reward accuracy and margin rise."""
    metrics = steps(out)
    first, last = metrics[0], metrics[-1]
    print(
        "per step (loss, reward_accuracy, reward_margin):",
        [(round(m["train_loss"], 4), m["reward_accuracy"], round(m["reward_margin"], 3)) for m in metrics],
    )
    assert first["train_loss"] == pytest.approx(LN2, abs=1e-5)
    for name in ("reward_margin", "chosen_reward", "rejected_reward"):
        assert abs(first[name]) < 1e-5, first
    assert last["reward_accuracy"] == 1.0 and last["reward_margin"] > 0.2, last
    assert last["train_loss"] < first["train_loss"]
    return metrics


# --- the loss against TRL's ---------------------------------------------------------------------------


def test_loss_rewards_and_log_probs_equal_trls_on_the_same_model_outputs(
    tiny_model: Path, tmp_path: Path
) -> None:
    from trl import DPOTrainer
    from trl.trainer.dpo_config import FDivergenceType

    beta = 0.3
    data = write_preferences(tmp_path / "pref.jsonl")
    run = setup(request("lora", tiny_model, data, tmp_path / "out", lora_r=8, lora_dropout=0.0, beta=beta))
    model = run.model.module
    # A policy away from its reference: random adapter B matrices (a fresh adapter's are zero).
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    group = [[0, 1, 2], [3, 4, 5]]  # one optimizer step over two accumulated batches

    # Ours: the training step, its reference precomputed at setup (the base: the adapter was zero).
    loss, _, metrics = preference_step(run, group)
    assert isinstance(run.data.train, PreferenceDataset)
    pairs = [run.data.train.examples[i] for batch in group for i in batch]
    with torch.no_grad():
        ours_chosen, ours_rejected, _ = sequence_logps(model, pairs, run.data.pad_id, "cpu")

    # TRL 0.11.4: its concatenated forward (chosen and rejected padded into one batch), its log-probs,
    # its reference with the adapter disabled, its sigmoid loss.
    def padded(rows: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [value] * (width - len(r)) for r in rows])

    batch: dict[str, Any] = {}
    for side in ("chosen", "rejected"):
        encoded = [getattr(p, side) for p in pairs]
        batch[f"{side}_input_ids"] = padded([e.input_ids for e in encoded], run.data.pad_id)
        batch[f"{side}_attention_mask"] = padded([[1] * len(e.input_ids) for e in encoded], 0)
        batch[f"{side}_labels"] = padded([e.labels for e in encoded], IGNORE)
    trainer = SimpleNamespace(
        is_encoder_decoder=False,
        is_vision_model=False,
        label_pad_token_id=IGNORE,
        padding_value=run.data.pad_id,
        accelerator=SimpleNamespace(device=torch.device("cpu")),
        aux_loss_enabled=False,
        loss_type="sigmoid",
        beta=beta,
        label_smoothing=0.0,
        reference_free=False,
        f_divergence_type=FDivergenceType.REVERSE_KL.value,
        f_divergence_params=None,
        concatenated_inputs=DPOTrainer.concatenated_inputs,
        get_batch_logps=DPOTrainer.get_batch_logps,
    )
    with torch.no_grad():
        trl_chosen, trl_rejected = DPOTrainer.concatenated_forward(trainer, model, batch)[:2]  # type: ignore[arg-type]
        with model.disable_adapter():
            ref_chosen, ref_rejected = DPOTrainer.concatenated_forward(trainer, model, batch)[:2]  # type: ignore[arg-type]
    losses, chosen_rewards, rejected_rewards = DPOTrainer.dpo_loss(
        trainer,  # type: ignore[arg-type]
        trl_chosen,
        trl_rejected,
        ref_chosen,
        ref_rejected,
    )

    # Tolerance: 1e-5 absolute on the loss and the rewards (float32 sums over the same tokens, the
    # reference from other batches: see SAME); the log-probabilities themselves agree to SAME.
    differences = {
        "policy log-probs": float(
            torch.cat([ours_chosen - trl_chosen, ours_rejected - trl_rejected]).abs().max()
        ),
        "reference log-probs": max(
            abs(p.reference[0] - float(c)) + abs(p.reference[1] - float(r))  # type: ignore[index]
            for p, c, r in zip(pairs, ref_chosen, ref_rejected)
        ),
        "loss": abs(loss - float(losses.mean())),
        "chosen_reward": abs(metrics["chosen_reward"] - float(chosen_rewards.mean())),
        "rejected_reward": abs(metrics["rejected_reward"] - float(rejected_rewards.mean())),
        "reward_margin": abs(metrics["reward_margin"] - float((chosen_rewards - rejected_rewards).mean())),
    }
    print("largest differences from TRL:", {k: f"{v:.1e}" for k, v in differences.items()})
    assert differences["policy log-probs"] <= SAME and differences["reference log-probs"] <= SAME
    for name in ("loss", "chosen_reward", "rejected_reward", "reward_margin"):
        assert differences[name] <= 1e-5, differences
    assert metrics["reward_accuracy"] * len(pairs) == pytest.approx(
        int((chosen_rewards > rejected_rewards).sum())
    )
    assert 0.0 < metrics["reward_accuracy"] < 1.0 and loss != pytest.approx(LN2, abs=1e-3)
    # And the loss function alone, on TRL's own log-probs.
    ours = dpo_loss(trl_chosen, trl_rejected, ref_chosen, ref_rejected, beta)
    for mine, theirs in zip(ours, (losses, chosen_rewards, rejected_rewards)):
        assert torch.allclose(mine, theirs, atol=1e-7, rtol=0)


# --- from the base model ------------------------------------------------------------------------------


def test_lora_dpo_reports_rewards_per_step_and_its_reference_is_the_base_with_the_adapter_disabled(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_preferences(tmp_path / "pref.jsonl")
    loads = count_model_loads(monkeypatch)
    run, result = staged(
        request(
            "lora",
            tiny_model,
            data,
            tmp_path / "out",
            validation=data,
            n_epochs=4,
            learning_rate=1e-3,
            lora_r=16,
            lora_dropout=0.0,
        )
    )
    # One model, one adapter: the reference is no second copy of the weights.
    assert loads == [tiny_model]
    model = run.model.module
    assert set(model.peft_config) == {"default"}
    check_first_step_and_rise(tmp_path / "out")
    train_data = run.data.train
    assert isinstance(train_data, PreferenceDataset) and result.steps == 12
    reference = [p.reference for p in train_data.examples]
    # The reference is the base: the trained model with its adapter disabled computes it again.
    with model.disable_adapter():
        base = logps_of(model, train_data, run.data.pad_id)
    print(f"reference against the adapter-disabled base: {largest_difference(reference, base):.1e}")  # type: ignore[arg-type]
    assert largest_difference(reference, base) <= SAME  # type: ignore[arg-type]
    trained = logps_of(model, train_data, run.data.pad_id)
    print(f"pairs preferring the chosen output: base {preferring(base)}, trained {preferring(trained)} of 12")
    assert preferring(trained) == 12 > preferring(base)
    # Evaluation: OpenAI's names for the validation metrics (the recipe evaluates at the last step).
    last = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    evaluated = next(line for line in reversed(last) if "valid_reward_accuracy" in line)
    assert evaluated["valid_reward_accuracy"] == 1.0 and evaluated["valid_reward_margin"] > 0.2
    direct = evaluate_preferences(run, train_data)
    assert set(direct) == {"loss", "reward_accuracy", "reward_margin"}
    assert direct["loss"] < LN2 and direct["reward_accuracy"] == 1.0


def test_full_dpo_reports_rewards_per_step_and_its_reference_is_the_base(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    data = write_preferences(tmp_path / "pref.jsonl")
    base_model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    loads = count_model_loads(monkeypatch)
    run, result = staged(request("full", tiny_model, data, tmp_path / "out", n_epochs=4, learning_rate=1e-4))
    assert loads == [tiny_model] and result.steps == 12
    check_first_step_and_rise(tmp_path / "out")
    train_data = run.data.train
    assert isinstance(train_data, PreferenceDataset)
    base = logps_of(base_model, train_data, run.data.pad_id)
    reference = [p.reference for p in train_data.examples]
    print(f"reference against the base model: {largest_difference(reference, base):.1e}")  # type: ignore[arg-type]
    assert largest_difference(reference, base) <= SAME  # type: ignore[arg-type]
    trained_model, _ = load_for_inference(tiny_model, full_model=result.result_dir)
    trained = logps_of(trained_model, train_data, run.data.pad_id)
    print(f"pairs preferring the chosen output: base {preferring(base)}, trained {preferring(trained)} of 12")
    assert preferring(trained) == 12 > preferring(base)


# --- from an SFT model ----------------------------------------------------------------------------------


SFT = {"n_epochs": 30, "batch_size": 4, "learning_rate": 1e-3}


def test_lora_dpo_from_an_sft_adapter_starts_at_it_keeps_it_as_reference_and_shifts_to_the_preferred(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = write_both_answers(tmp_path / "both.jsonl")
    sft = run_training(
        request(
            "lora",
            tiny_model,
            both,
            tmp_path / "sft",
            objective="supervised",
            lora_r=32,
            lora_dropout=0.0,
            **SFT,
        )
    )
    before = greedy_counts(tiny_model, adapter=sft.result_dir)
    data = write_preferences(tmp_path / "pref.jsonl")
    loads = count_model_loads(monkeypatch)
    run, result = staged(
        request(
            "lora", tiny_model, data, tmp_path / "dpo", init=sft.result_dir, n_epochs=5, learning_rate=1e-4
        )
    )
    assert loads == [tiny_model]  # the base, once; the SFT adapter on it is the trainable one
    assert set(run.model.module.peft_config) == {"default"}
    check_first_step_and_rise(tmp_path / "dpo")
    train_data = run.data.train
    assert isinstance(train_data, PreferenceDataset)
    sft_model, _ = load_for_inference(tiny_model, adapter=sft.result_dir)
    reference = [p.reference for p in train_data.examples]
    assert largest_difference(reference, logps_of(sft_model, train_data, run.data.pad_id)) <= SAME  # type: ignore[arg-type]
    with run.model.module.disable_adapter():  # not the base's
        assert largest_difference(reference, logps_of(run.model.module, train_data, run.data.pad_id)) > 1.0  # type: ignore[arg-type]
    after = greedy_counts(tiny_model, adapter=result.result_dir)
    print(f"greedy answers (preferred, non-preferred) of 12: SFT {before}, after DPO {after}")
    assert after[0] > before[0] and after[1] < before[1]


def test_full_dpo_from_an_sft_model_starts_at_it_keeps_it_as_reference_and_shifts_to_the_preferred(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = write_both_answers(tmp_path / "both.jsonl")
    sft = run_training(request("full", tiny_model, both, tmp_path / "sft", objective="supervised", **SFT))
    before = greedy_counts(tiny_model, full=sft.result_dir)
    data = write_preferences(tmp_path / "pref.jsonl")
    loads = count_model_loads(monkeypatch)
    run, result = staged(
        request(
            "full", tiny_model, data, tmp_path / "dpo", init=sft.result_dir, n_epochs=5, learning_rate=1e-4
        )
    )
    assert loads == [sft.result_dir]  # the SFT model instead of the base, and nothing else
    check_first_step_and_rise(tmp_path / "dpo")
    train_data = run.data.train
    assert isinstance(train_data, PreferenceDataset)
    sft_model, _ = load_for_inference(tiny_model, full_model=sft.result_dir)
    reference = [p.reference for p in train_data.examples]
    assert largest_difference(reference, logps_of(sft_model, train_data, run.data.pad_id)) <= SAME  # type: ignore[arg-type]
    after = greedy_counts(tiny_model, full=result.result_dir)
    print(f"greedy answers (preferred, non-preferred) of 12: SFT {before}, after DPO {after}")
    assert after[0] > before[0] and after[1] < before[1]


# --- resume -----------------------------------------------------------------------------------------


class Reclaimed(Exception):
    pass


def test_a_resumed_full_dpo_run_recomputes_the_same_reference_and_ends_like_an_uninterrupted_one(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_preferences(tmp_path / "pref.jsonl", PAIRS[:8])
    hp = {"n_epochs": 4, "learning_rate": 1e-4, "checkpoint_every_steps": 3}
    reference = run_training(request("full", tiny_model, data, tmp_path / "reference", **hp))

    def stop_at_4(step: int) -> None:
        if step == 4:
            raise Reclaimed

    with pytest.raises(Reclaimed):
        run_training(
            TrainRequest(
                **{**vars(request("full", tiny_model, data, tmp_path / "killed", **hp)), "on_step": stop_at_4}
            )
        )
    resumed = run_training(request("full", tiny_model, data, tmp_path / "killed", **hp))
    assert resumed.resumed_from == 3 and resumed.steps == reference.steps == 8
    expected, got = steps(tmp_path / "reference"), steps(tmp_path / "killed")
    assert [m["step"] for m in got] == list(range(1, 9))
    for a, b in zip(expected, got):
        for name in ("train_loss", "reward_margin", "chosen_reward", "rejected_reward"):
            assert b[name] == pytest.approx(a[name], abs=1e-6), (name, a, b)


# --- through the entrypoint ---------------------------------------------------------------------------


class FolderStore(ObjectStore):
    """S3 as folders (`root/bucket/key`): the entrypoint's reads and writes without LocalStack."""

    def __init__(self, root: Path) -> None:
        super().__init__(client=object())
        self.root = root

    def _path(self, uri: S3Uri) -> Path:
        return self.root / uri.bucket / uri.key

    def download_file(self, uri: S3Uri, dest: Path) -> Path:
        if not self._path(uri).is_file():
            raise ConfigError(f"{uri} does not exist")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self._path(uri), dest)
        return dest

    def list_keys(self, uri: S3Uri) -> list[str]:
        bucket = self.root / uri.bucket
        found = (p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(uri.key))

    def upload_file(self, local: Path, uri: S3Uri) -> None:
        self._path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(local, self._path(uri))

    def upload_dir(self, local: Path, uri: S3Uri, last: str | None = None) -> None:
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            self.upload_file(path, uri.child(str(path.relative_to(local))))

    def put_text(self, uri: S3Uri, text: str) -> None:
        self._path(uri).parent.mkdir(parents=True, exist_ok=True)
        self._path(uri).write_text(text)

    def get_text(self, uri: S3Uri) -> str | None:
        return self._path(uri).read_text() if self._path(uri).is_file() else None


def test_the_entrypoint_starts_dpo_from_the_init_models_adapter_and_names_the_objective_in_the_result(
    tiny_model: Path, tmp_path: Path
) -> None:
    from ft_trainer.config import from_environment
    from ft_trainer.entrypoint import run as run_job

    tenant, bucket = "tn_0123456789abcdef", tmp_path / "s3" / "art"
    both = write_both_answers(tmp_path / "both.jsonl", PAIRS[:4])
    sft = run_training(
        request(
            "lora", tiny_model, both, tmp_path / "sft", objective="supervised", n_epochs=1, lora_dropout=0.0
        )
    )
    shutil.copytree(sft.result_dir, bucket / f"tenants/{tenant}/jobs/ftjob-sft/adapter")
    (bucket / f"tenants/{tenant}/files").mkdir(parents=True)
    write_preferences(bucket / f"tenants/{tenant}/files/pref.jsonl", PAIRS[:4])
    env = {
        "JOB_ID": "ftjob-dpo",
        "TENANT_ID": tenant,
        "METHOD": "lora",
        "OBJECTIVE": "dpo",
        "INIT_MODEL_URI": f"s3://art/tenants/{tenant}/jobs/ftjob-sft/adapter",
        "BASE_MODEL_URI": str(tiny_model),
        "TRAINING_FILE_URI": f"s3://art/tenants/{tenant}/files/pref.jsonl",
        "OUTPUT_URI": f"s3://art/tenants/{tenant}/jobs/ftjob-dpo/",
        "HYPERPARAMETERS": json.dumps({**DPO_RUN, "n_epochs": 1}),
    }
    store = FolderStore(tmp_path / "s3")
    summary = run_job(from_environment(env), events=PrintSink(), store=store, work=tmp_path / "work")
    assert (summary["objective"], summary["method"], summary["steps"]) == ("dpo", "lora", 1)
    result = json.loads((bucket / f"tenants/{tenant}/jobs/ftjob-dpo/result.json").read_text())
    assert result["objective"] == "dpo"
    # Started from the SFT adapter (its own rank), reference included: the first step's rewards are 0.
    adapter = json.loads(
        (bucket / f"tenants/{tenant}/jobs/ftjob-dpo/adapter/adapter_config.json").read_text()
    )
    assert adapter["r"] == json.loads((sft.result_dir / "adapter_config.json").read_text())["r"]
    first = json.loads(
        (bucket / f"tenants/{tenant}/jobs/ftjob-dpo/metrics.jsonl").read_text().splitlines()[0]
    )
    assert first["train_loss"] == pytest.approx(LN2, abs=1e-5) and abs(first["reward_margin"]) < 1e-5
    # An init model that is not there is bad input, before any training.
    missing = {**env, "JOB_ID": "ftjob-x", "OUTPUT_URI": f"s3://art/tenants/{tenant}/jobs/ftjob-x/"}
    missing["INIT_MODEL_URI"] = f"s3://art/tenants/{tenant}/jobs/ftjob-none/adapter/"
    with pytest.raises(ConfigError, match="init model .* has no files"):
        run_job(from_environment(missing), events=PrintSink(), store=store, work=tmp_path / "work-x")
