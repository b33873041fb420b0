"""Train from local files without S3 or DynamoDB: `python -m ft_trainer.local_run ...` (tests, debugging)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .config import parse_hyperparameters
from .events import PrintSink
from .train import TrainRequest, run_training


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-model", type=Path, required=True)
    parser.add_argument("--family", default="tiny")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hyperparameters", default="{}")
    args = parser.parse_args()
    result = run_training(
        TrainRequest(
            base_model=args.base_model,
            family=args.family,
            method=args.method,
            hyperparameters=parse_hyperparameters(json.loads(args.hyperparameters)),
            training_file=args.train,
            validation_file=None,
            output_dir=args.out,
            events=PrintSink(),
            device="cpu",
        )
    )
    print(
        json.dumps(
            {"steps": result.steps, "final_loss": result.final_loss, "resumed_from": result.resumed_from}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
