"""Evaluation during training, without torch: the validation data (a file, or a split of the training
data), when to evaluate, which evaluation is the best so far, when to stop early, and the per-step
metrics as the job's CSV result file.

Names follow OpenAI's: each evaluation reports `valid_loss` and `valid_mean_token_accuracy` (DPO:
`valid_reward_accuracy`, `valid_reward_margin`) over at most `PERIODIC_EXAMPLES` validation examples;
the end of the run reports `full_valid_*` over the whole validation set, for the delivered weights.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

# The periodic evaluations look at a fixed sample of at most this many validation examples: enough to
# rank checkpoints, and a long validation file does not slow training down. The final `full_valid_*`
# evaluation reads all of them.
PERIODIC_EXAMPLES = 512
# About this many evaluations per run when `eval_interval` is auto.
AUTO_EVALUATIONS = 10

# The CSV's columns, in order; a metric outside them (a future one) is appended after them.
CSV_COLUMNS = (
    "step",
    "epoch",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
    "reward_accuracy",
    "reward_margin",
    "valid_reward_accuracy",
    "valid_reward_margin",
    "full_valid_reward_accuracy",
    "full_valid_reward_margin",
    "learning_rate",
    "trained_tokens",
)
# Progress fields of the metrics log that are not per-step measurements.
_NOT_IN_CSV = {"total_steps", "tokens_per_second", "eta_seconds"}


class HasExamples(Protocol):
    @property
    def examples(self) -> list[Any]: ...


D = TypeVar("D", bound=HasExamples)


@dataclass(frozen=True)
class Split:
    """The share of the training examples held out as validation data, and how many that was."""

    fraction: float
    examples: int

    def to_json(self) -> dict[str, object]:
        return {"fraction": self.fraction, "examples": self.examples}


def split_validation(train: D, fraction: float, seed: int) -> tuple[D, D | None, Split | None]:
    """Without a validation file: a seeded random `fraction` of the training examples (at least one,
    leaving at least one to train on) becomes the validation set. The same seed splits the same way, so a
    resumed run evaluates on the same examples."""
    count = len(train.examples)
    if fraction <= 0 or count < 2:
        return train, None, None
    held = min(max(1, round(count * fraction)), count - 1)
    order = list(range(count))
    random.Random(f"validation-split-{seed}").shuffle(order)
    held_out = set(order[:held])
    kept = [e for i, e in enumerate(train.examples) if i not in held_out]
    valid = [e for i, e in enumerate(train.examples) if i in held_out]
    return replace(train, examples=kept), replace(train, examples=valid), Split(fraction, held)  # type: ignore[type-var]


def periodic_sample(valid: D, seed: int) -> D:
    """The validation examples the periodic evaluations read: all, or a fixed seeded sample."""
    if len(valid.examples) <= PERIODIC_EXAMPLES:
        return valid
    order = sorted(
        random.Random(f"validation-sample-{seed}").sample(range(len(valid.examples)), PERIODIC_EXAMPLES)
    )
    return replace(valid, examples=[valid.examples[i] for i in order])  # type: ignore[type-var]


def eval_interval(configured: int | None, total_steps: int) -> int:
    """Steps between evaluations: as configured, or about `AUTO_EVALUATIONS` per run."""
    if configured is not None:
        return configured
    return max(1, math.ceil(total_steps / AUTO_EVALUATIONS))


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """`{"loss": …}` → `{"valid_loss": …}`."""
    return {f"{prefix}{name}": value for name, value in metrics.items()}


@dataclass
class Best:
    """The best evaluation so far (lowest validation loss) and the evaluations since it."""

    step: int | None = None
    valid_loss: float | None = None
    evals_since: int = 0

    def record(self, step: int, valid_loss: float) -> bool:
        """Counts an evaluation; True when it is the best so far."""
        if self.valid_loss is None or valid_loss < self.valid_loss:
            self.step, self.valid_loss, self.evals_since = step, valid_loss, 0
            return True
        self.evals_since += 1
        return False

    def exhausted(self, patience: int | None) -> bool:
        """Early stopping: `patience` evaluations in a row without a better validation loss."""
        return patience is not None and self.evals_since >= patience

    def to_json(self) -> dict[str, object]:
        return {
            "best_step": self.step,
            "best_valid_loss": self.valid_loss,
            "evals_since_best": self.evals_since,
        }

    @staticmethod
    def from_json(raw: object) -> Best:
        if not isinstance(raw, dict):
            return Best()
        step, loss, since = raw.get("best_step"), raw.get("best_valid_loss"), raw.get("evals_since_best")
        return Best(
            step=step if isinstance(step, int) else None,
            valid_loss=float(loss) if isinstance(loss, (int, float)) else None,
            evals_since=since if isinstance(since, int) else 0,
        )


def results_csv(metrics_log: Path) -> str:
    """metrics.jsonl as CSV, one row per step: a step's lines (its metrics, then its evaluations, the
    final full validation) merged, empty cells where a metric was not measured."""
    rows: dict[int, dict[str, Any]] = {}
    if metrics_log.is_file():
        for line in metrics_log.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            step = record.get("step")
            if isinstance(step, int):
                rows.setdefault(step, {}).update(
                    {k: v for k, v in record.items() if k not in _NOT_IN_CSV and v is not None}
                )
    extra = sorted({k for row in rows.values() for k in row} - set(CSV_COLUMNS))
    columns = [*CSV_COLUMNS, *extra]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for step in sorted(rows):
        writer.writerow({k: _cell(v) for k, v in rows[step].items()})
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
