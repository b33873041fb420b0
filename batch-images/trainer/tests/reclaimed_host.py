"""A training run that stops after a given step, as one on a reclaimed Spot host would: in process
(`stop_after`, an `on_step` observer) or as the container's training process, for the resume tests
(`python tests/reclaimed_host.py STEP`, with the job's environment). Production has no such switch."""

from __future__ import annotations

import sys
from collections.abc import Callable


class HostReclaimed(RuntimeError):
    pass


def stop_after(last_step: int) -> Callable[[int], None]:
    def on_step(step: int) -> None:
        if step >= last_step:
            raise HostReclaimed(f"the host was reclaimed after step {step}")

    return on_step


if __name__ == "__main__":
    from ft_trainer.entrypoint import main

    main(on_step=stop_after(int(sys.argv[1])))
