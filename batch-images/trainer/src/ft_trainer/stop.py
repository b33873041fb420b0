"""A stop on request. SIGTERM (a pause's TerminateJob, a Spot reclaim's notice, the local runner's
terminate) asks the run to write a checkpoint at the end of its current optimizer step and exit with the
contract's `stopped` code, so that the next run resumes from that step rather than from the last periodic
checkpoint. Batch sends SIGKILL after its stop timeout (30 s by default): a step and a checkpoint must fit
in it, or the next run resumes from the checkpoint before."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


class TrainingStopped(Exception):
    """The run stopped on request after step `step`, whose checkpoint is complete (or was already)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"stopped on request at step {step}")
        self.step = step


def install() -> None:
    """SIGTERM requests a stop instead of killing the process (the main thread of the process only)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _requested.set()


def request() -> None:
    """What SIGTERM does; for tests and in-process callers."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    _requested.clear()
