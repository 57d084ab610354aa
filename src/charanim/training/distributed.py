"""Data-parallel training across processes (GPUs, or CPU processes for tests).

Launched by ``torchrun --nproc_per_node N -m charanim train ...`` or ``accelerate launch
--num_processes N -m charanim train ...`` (both set ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``). Every process builds the same model and takes every N-th sample of
each micro-batch (the batches stay a pure function of seed and step); gradients are
averaged across processes before clipping, so N processes train exactly like one
process with the whole batch. Only the first process writes logs, checkpoints,
validation videos and the exported model.

Gradients are averaged with one flat all-reduce per step (written here: a few lines,
and ``DistributedDataParallel`` would need the transformer wrapped, which the hooks of
adapter conditioners and the LoRA code would then have to see through).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def join() -> Group:
    """The process group this process was launched into (a group of one if none)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(group: Group) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", group.local_rank)
    return torch.device("cpu")


def average_gradients(parameters, group: Group) -> None:
    if not group.active:
        return
    import torch.distributed as dist

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= group.world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean(value: float, group: Group) -> float:
    if not group.active:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device_for(group))
    dist.all_reduce(tensor)
    return float(tensor.item()) / group.world


def any_true(flag: bool, group: Group) -> bool:
    """True in every process if it is true in any."""
    if not group.active:
        return flag
    import torch.distributed as dist

    tensor = torch.tensor([float(flag)], device=device_for(group))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(group: Group) -> None:
    if group.active:
        import torch.distributed as dist

        dist.barrier()


def leave(group: Group) -> None:
    if group.active:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
