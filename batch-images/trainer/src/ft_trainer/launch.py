"""The container's command: one process, or torchrun over every GPU of every node.

AWS Batch multi-node parallel jobs start this on each node with `AWS_BATCH_JOB_NUM_NODES`,
`AWS_BATCH_JOB_NODE_INDEX` and `AWS_BATCH_JOB_MAIN_NODE_INDEX`; child nodes also get
`AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS` (the main node does not: it hosts the rendezvous on its
own address). They become torchrun's static rendezvous: `--nnodes`, `--node-rank` (the main node is
rank 0), `--master-addr` and `--master-port` (FT_MASTER_PORT, 29500). Processes per node: FT_NPROC_PER_NODE
(the dispatcher sets the plan's GPUs per node), else every visible GPU, else FT_LOCAL_NPROC (the local
platform's CPU processes, gloo), else 1.

One process in all runs the entrypoint in this process, as before. Otherwise torchrun (its `run`
function, the same code as the CLI) starts the workers with no restarts: a worker that dies makes
torchrun stop the others within a few seconds, and a peer on another node that waits for it fails at
the collective timeout (distributed.py). The exit code is the failed worker's own when it reported one
(2 bad input, 3 out of memory), else 1; a worker killed without a word (SIGKILL, the kernel's OOM
killer) gets an error event here.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Mapping

from ft_contract import load_platform


@dataclass(frozen=True, kw_only=True)
class Topology:
    nodes: int
    node_rank: int
    nproc_per_node: int
    master_addr: str
    master_port: int

    @property
    def world_size(self) -> int:
        return self.nodes * self.nproc_per_node


def topology(env: Mapping[str, str], visible_gpus: int) -> Topology:
    """torchrun's arguments from the Batch (or local) environment; pure, so it is tested without Batch."""
    nodes = int(env.get("AWS_BATCH_JOB_NUM_NODES") or env.get("FT_NNODES") or 1)
    index = int(env.get("AWS_BATCH_JOB_NODE_INDEX") or 0)
    main = int(env.get("AWS_BATCH_JOB_MAIN_NODE_INDEX") or 0)
    if nodes < 1 or not 0 <= index < nodes or not 0 <= main < nodes:
        raise ValueError(f"inconsistent node layout: {nodes} nodes, this node {index}, main node {main}")
    node_rank = (index - main) % nodes
    main_address = env.get("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS")
    if node_rank != 0 and not main_address:
        raise ValueError("a child node needs AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS")
    # The main node hosts the rendezvous store; it listens on every interface of its own.
    if node_rank != 0 and main_address:
        master_addr = main_address
    else:
        master_addr = env.get("FT_MAIN_NODE_ADDRESS") or _own_address()
    explicit = env.get("FT_NPROC_PER_NODE")
    nproc = int(explicit) if explicit else visible_gpus or int(env.get("FT_LOCAL_NPROC") or 1)
    if nproc < 1:
        raise ValueError(f"FT_NPROC_PER_NODE must be at least 1, not {nproc}")
    return Topology(
        nodes=nodes,
        node_rank=node_rank,
        nproc_per_node=nproc,
        master_addr=master_addr,
        master_port=int(env.get("FT_MASTER_PORT") or 29500),
    )


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def torchrun_args(top: Topology, run_id: str) -> list[str]:
    return [
        f"--nnodes={top.nodes}",
        f"--nproc-per-node={top.nproc_per_node}",
        f"--node-rank={top.node_rank}",
        f"--master-addr={top.master_addr}",
        f"--master-port={top.master_port}",
        f"--rdzv-id={run_id}",
        "--max-restarts=0",
        "--monitor-interval=1",
        "--module",
        "ft_trainer.entrypoint",
    ]


def exit_code_for(failures: Mapping[int, int]) -> int:
    """The job's exit code from the workers' (rank → exit code): bad input 2 or out of memory 3 when a
    worker said so; `stopped` when every worker that exited stopped on request (SIGTERM, stop.py) after
    the checkpoint; else 1."""
    contract = load_platform()
    codes = set(failures.values())
    if codes == {contract.exit_code("stopped")}:
        return contract.exit_code("stopped")
    for documented in (contract.exit_code("outOfMemory"), contract.exit_code("invalidInput")):
        if documented in codes:
            return documented
    return contract.exit_code("failed")


def describe_failure(failures: Mapping[int, int]) -> str:
    parts = []
    for rank, code in sorted(failures.items()):
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        parts.append(f"rank {rank} {how}")
    return "Training failed: a training process died (" + "; ".join(parts) + "); the whole job stops."


def main() -> None:
    import torch

    top = topology(os.environ, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if top.world_size == 1:
        from .entrypoint import main as single

        single()
        return
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    run_id = os.environ.get("JOB_ID", "ft-local")
    print(
        f"[launch] torchrun: {top.nodes} node(s) × {top.nproc_per_node} process(es), this node rank "
        f"{top.node_rank}, rendezvous {top.master_addr}:{top.master_port}",
        flush=True,
    )
    try:
        run(parse_args(torchrun_args(top, run_id)))
    except SignalException as error:
        # SIGTERM to the agent (a pause, a Spot reclaim): it passed the signal on to the workers and gave
        # them its grace period to write their checkpoint (stop.py) before it stopped them.
        print(f"[launch] stopped by {error.sigval.name}", file=sys.stderr, flush=True)
        sys.exit(load_platform().exit_code("stopped"))
    except ChildFailedError as error:
        failures = {rank: failure.exitcode for rank, failure in error.failures.items()}
        code = exit_code_for(failures)
        # A worker that exited 1–3 wrote its own error event; one killed by a signal could not.
        if any(c < 0 for c in failures.values()):
            _report(describe_failure(failures))
        print(describe_failure(failures), file=sys.stderr, flush=True)
        sys.exit(code)
    sys.exit(0)


def _report(message: str) -> None:
    try:
        from .config import from_environment
        from .events import DynamoEventSink

        config = from_environment()
        if config.events_table:
            DynamoEventSink(config.events_table, config.tenant_id, config.job_id).message(message, "error")
    except Exception as error:  # noqa: BLE001 — the exit code still tells Batch
        print(f"[launch] could not write the error event: {error}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
