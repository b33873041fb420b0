"""DPO (direct preference optimisation, Rafailov et al. 2023): the sigmoid loss, its reference
log-probabilities, the optimizer step's backward and the preference evaluation.

    loss = -logsigmoid(beta × ((πc − πr) − (refc − refr)))      mean over the pairs of a global batch

π and ref are the summed log-probabilities of an output's labelled tokens (its content and end-of-turn
token, preferences.py) under the policy and the reference model; the rewards are beta × (π − ref).

The reference is the model as set up, before its first step: the base model for LoRA (a fresh adapter's
B matrices are zero, so the wrapped model computes exactly the base's outputs, which is what TRL gets with
adapters disabled), the SFT model when training starts from one (INIT_MODEL_URI: its adapter loaded as
the trainable one, or its full weights), the base for full-parameter training. `with_reference` runs
every pair through it once at setup, sharded like training, and keeps two numbers per pair: no second
model, no second adapter, no adapter switching inside FSDP2-sharded layers, and one forward pass per pair
for the whole run instead of one per pair and epoch. Setup runs before a checkpoint is loaded, so a
resumed run recomputes the same reference from the same initial weights; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .chat_format import IGNORE
from .data import pad_batch
from .distributed import my_part, DistEnv, all_sum
from .preferences import PreferenceDataset, PreferencePair
from .records import Data, Model, TrainingRun


def sequence_logps(
    model: Any, pairs: list[PreferencePair], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The summed log-probabilities of each pair's chosen and rejected output (labelled tokens only),
    from one forward pass over both (chosen rows, then rejected rows, right-padded to one width: TRL's
    concatenated forward), in fp32; and the tokens that pass read (padding excluded)."""
    sequences = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    ids, labels, mask = (torch.tensor(x, device=device) for x in pad_batch(sequences, pad_id))
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    # Cross entropy's fused log-softmax: no second vocabulary-sized tensor; 0 where the label is ignored.
    token_logps = -F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(target.shape)
    sums = token_logps.sum(-1)
    return sums[: len(pairs)], sums[len(pairs) :], int(mask.sum().item())


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pair: the loss, the chosen output's reward and the rejected one's (rewards detached)."""
    logits = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
    losses = -F.logsigmoid(beta * logits)
    chosen_rewards = beta * (policy_chosen - reference_chosen).detach()
    rejected_rewards = beta * (policy_rejected - reference_rejected).detach()
    return losses, chosen_rewards, rejected_rewards


def _reference(pairs: list[PreferencePair], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    if any(p.reference is None for p in pairs):
        raise ValueError("preference pairs without reference log-probabilities (dpo.with_reference)")
    values = torch.tensor([p.reference for p in pairs], dtype=torch.float32, device=device)
    return values[:, 0], values[:, 1]


@dataclass
class _Sums:
    """Sums over pairs (and tokens) of this rank, added over all ranks by `total`."""

    loss: float = 0.0
    correct: float = 0.0
    margin: float = 0.0
    chosen: float = 0.0
    rejected: float = 0.0
    pairs: float = 0.0
    tokens: float = 0.0

    def add(
        self, losses: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor, weight: float, tokens: int
    ) -> None:
        # One device-to-host copy for the five sums.
        loss, correct, margin, chosen_sum, rejected_sum = torch.stack(
            [
                losses.detach().sum(),
                (chosen > rejected).sum().to(losses.dtype),
                (chosen - rejected).sum(),
                chosen.sum(),
                rejected.sum(),
            ]
        ).tolist()
        self.loss += weight * loss
        self.correct += weight * correct
        self.margin += weight * margin
        self.chosen += weight * chosen_sum
        self.rejected += weight * rejected_sum
        self.pairs += weight * len(losses)
        self.tokens += tokens if weight else 0

    def total(self, env: DistEnv) -> _Sums:
        return _Sums(
            *all_sum(
                env,
                [self.loss, self.correct, self.margin, self.chosen, self.rejected, self.pairs, self.tokens],
            )
        )

    def metrics(self) -> dict[str, float]:
        n = max(self.pairs, 1.0)
        return {
            "reward_accuracy": self.correct / n,
            "reward_margin": self.margin / n,
            "chosen_reward": self.chosen / n,
            "rejected_reward": self.rejected / n,
        }


def preference_step(run: TrainingRun, group: list[list[int]]) -> tuple[float, int, dict[str, float]]:
    """Backward over the batches of one optimizer step, as train._accumulated_step does for supervised
    training: the loss is the mean over every pair of the group on every rank, so gradient accumulation
    and sharding give one large batch's gradient (FSDP2 averages gradients over ranks, hence the
    world-size factor). Returns the global mean loss, the tokens read (each counted once) and the step's
    metrics: reward_accuracy (share of pairs whose chosen reward beats the rejected one), reward_margin,
    chosen_reward and rejected_reward (means over the pairs)."""
    data, model, env = run.data.train, run.model.module, run.env
    if not isinstance(data, PreferenceDataset):
        raise TypeError("a DPO step needs preference data")
    beta = run.req.hyperparameters.beta
    total_pairs = sum(len(batch) for batch in group)
    scale = env.world_size if env.grouped else 1
    sums = _Sums()
    for batch in group:
        mine, weight = my_part(batch, env)
        pairs = [data.examples[i] for i in mine]
        policy_chosen, policy_rejected, tokens = sequence_logps(model, pairs, run.data.pad_id, env.device)
        losses, chosen, rejected = dpo_loss(
            policy_chosen, policy_rejected, *_reference(pairs, env.device), beta=beta
        )
        (losses.sum() * (weight * scale / max(total_pairs, 1))).backward()
        sums.add(losses, chosen, rejected, weight, tokens)
    total = sums.total(env)
    return total.loss / max(total_pairs, 1), int(total.tokens), total.metrics()


@torch.no_grad()
def evaluate_preferences(run: TrainingRun, data: PreferenceDataset) -> dict[str, float]:
    """`loss`, `reward_accuracy` and `reward_margin` over a preference dataset (validation), over all
    ranks, in eval mode."""
    model, env = run.model.module, run.env
    batch_size = run.req.hyperparameters.batch_size
    sums = _Sums()
    model.eval()
    try:
        for mine, weight in _batches(data, batch_size, env):
            pairs = [data.examples[i] for i in mine]
            policy_chosen, policy_rejected, tokens = sequence_logps(model, pairs, run.data.pad_id, env.device)
            losses, chosen, rejected = dpo_loss(
                policy_chosen,
                policy_rejected,
                *_reference(pairs, env.device),
                beta=run.req.hyperparameters.beta,
            )
            sums.add(losses, chosen, rejected, weight, tokens)
    finally:
        model.train()
    total = sums.total(env)
    metrics = total.metrics()
    return {
        "loss": total.loss / max(total.pairs, 1.0),
        "reward_accuracy": metrics["reward_accuracy"],
        "reward_margin": metrics["reward_margin"],
    }


def _batches(data: PreferenceDataset, batch_size: int, env: DistEnv) -> list[tuple[list[int], float]]:
    """Pairs by length in global batches of `batch_size`, this rank's part of each (every rank runs the
    same number of forward passes, as FSDP2's collectives need)."""
    order = sorted(range(len(data.examples)), key=lambda i: data.examples[i].length)
    return [my_part(order[start : start + batch_size], env) for start in range(0, len(order), batch_size)]


@torch.no_grad()
def reference_logps(
    model: Any, data: PreferenceDataset, pad_id: int, env: DistEnv, batch_size: int
) -> list[tuple[float, float]]:
    """Every pair's summed log-probabilities under `model` as it is (eval mode: no dropout), each rank
    computing its part and every rank receiving all of them."""
    values = [0.0] * (2 * len(data.examples))
    was_training = model.training
    model.eval()
    try:
        for mine, weight in _batches(data, batch_size, env):
            chosen, rejected, _ = sequence_logps(model, [data.examples[i] for i in mine], pad_id, env.device)
            if weight:
                for i, c, r in zip(mine, chosen.tolist(), rejected.tolist()):
                    values[2 * i], values[2 * i + 1] = c, r
    finally:
        model.train(was_training)
    values = all_sum(env, values)
    return [(values[2 * i], values[2 * i + 1]) for i in range(len(data.examples))]


def with_reference(data: Data, model: Model, env: DistEnv, batch_size: int) -> Data:
    """The training (and validation) pairs with their reference log-probabilities, from the model as set
    up: call it before the first step and before a checkpoint is loaded (see the module docstring)."""
    from dataclasses import replace

    def referenced(dataset: Any) -> Any:
        if not isinstance(dataset, PreferenceDataset):
            return dataset
        return dataset.with_reference(reference_logps(model.module, dataset, data.pad_id, env, batch_size))

    return replace(data, train=referenced(data.train), valid=referenced(data.valid))
