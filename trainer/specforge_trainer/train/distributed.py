"""Data parallelism: process-group setup from torchrun's environment and gradient averaging.

Gradients are averaged with one explicit all-reduce per step instead of wrapping the draft in DDP:
the EAGLE3 objective calls several draft methods per step (one per TTT position), which DDP's
forward-hook bookkeeping does not follow, and an explicit reduce keeps the draft model unaware of
distribution. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from specforge_api.pod_contract import PodEnv


@dataclass(frozen=True)
class ParallelContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def cpu_threads(cpu_request: str) -> int:
    """Intra-op threads of a CPU process: its pod's CPU request in whole cores (at least one), and at most
    the cores this process may run on. A manifest run on a laptop and in its pod so computes with the
    same thread count (which the arithmetic's reduction order depends on) wherever the cores allow."""
    from kubernetes.utils.quantity import parse_quantity

    return max(1, min(int(parse_quantity(cpu_request)), len(os.sched_getaffinity(0))))


def single_process_device() -> torch.device:
    """The device of a process outside a rank group (producers, eval, regeneration): the first GPU, else CPU."""
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


def init_parallel() -> ParallelContext:
    """Join the torchrun process group when launched by torchrun, else run as a single rank."""
    env = PodEnv.from_environ()
    world_size = env.world_size
    use_cuda = torch.cuda.is_available()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if use_cuda:
        local_rank = env.local_rank or 0
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return ParallelContext(rank=rank, world_size=world_size, device=device)


def shutdown_parallel() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: ParallelContext) -> torch.Tensor:
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(value: int, context: ParallelContext) -> int:
    """The largest of every rank's ``value`` (``value`` itself with one rank)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def average_gradients(parameters: list[torch.nn.Parameter], context: ParallelContext) -> None:
    """Average the gradients of ``parameters`` across ranks in one flat all-reduce."""
    if not context.enabled:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= context.world_size
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        parameter.grad = flat[offset : offset + count].view_as(parameter).clone()
        offset += count


def barrier(context: ParallelContext) -> None:
    if context.enabled:
        dist.barrier()
