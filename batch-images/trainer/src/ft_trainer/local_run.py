"""Train from local files without S3 or DynamoDB: `python -m ft_trainer.local_run ...` (tests, debugging);
under `torchrun -m ft_trainer.local_run ...` on several CPU processes (gloo), rank 0 prints the result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from .config import parse_hyperparameters
from .distributed import init_distributed, launched_by_torchrun, shutdown
from .events import PrintSink
from .train import TrainRequest, run_training


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-model", type=Path, required=True)
    parser.add_argument("--family", default="tiny")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--objective", choices=["supervised", "dpo"], default="supervised")
    parser.add_argument(
        "--init-model", type=Path, help="a fine-tuned model to start from: adapter/ or model/"
    )
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hyperparameters", default="{}")
    args = parser.parse_args()
    env = init_distributed(want_group=args.method == "full" or launched_by_torchrun(), device="cpu")
    result = run_training(
        TrainRequest(
            base_model=args.base_model,
            family=args.family,
            method=args.method,
            objective=args.objective,
            init_model=args.init_model,
            hyperparameters=parse_hyperparameters(json.loads(args.hyperparameters)),
            training_file=args.train,
            validation_file=None,
            output_dir=args.out,
            events=PrintSink(),
            device="cpu",
            dist=env,
        )
    )
    shutdown(env)
    if env.is_main:
        summary = {
            "steps": result.steps,
            "final_loss": result.final_loss,
            "resumed_from": result.resumed_from,
            "trained_tokens": result.trained_tokens,
            "world_size": env.world_size,
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
