"""Multi-GPU inference: diffusers' context parallelism, one process per GPU.

    torchrun --nproc_per_node 4 -m charanim animate ref.png drive.mp4 -o out.mp4 \\
        --model ~/models/Wan2.1-I2V-14B-480P-Diffusers --parallel ulysses

Every process loads the whole model and runs the same sampling loop with the same seed;
inside the transformer the token sequence is split across the processes (hooks from
the model's ``_cp_plan``), so each holds 1/N of the activations and attention is
computed jointly:

- ``ulysses``: an all-to-all turns "all heads, my tokens" into "my heads, all tokens"
  and back; works with any attention kernel diffusers can split (sdpa included).
  charanim turns on diffusers' "anything" mode, so frame sizes and head counts need
  not divide by the number of processes.
- ``ring``: key/value blocks travel round the processes; needs a kernel that returns
  the log-sum-exp (``--attention flash``).

Only the first process writes the video and prints. Combinations that would let the
processes disagree are refused: the first-block cache decides per process whether to
skip blocks (one skipping while another computes would hang the collectives), and
adapter conditioners add per-token features to a sequence that is no longer whole.
"""

from __future__ import annotations

from charanim.errors import DeviceError, IncompatibleError, InvalidOptionError
from charanim.training.distributed import Group, join

PARALLEL = ("none", "ulysses", "ring")
LAUNCH_HINT = (
    "launch one process per GPU: torchrun --nproc_per_node N -m charanim animate ... --parallel ulysses"
)


def check_parallel(mode: str) -> None:
    if mode not in PARALLEL:
        raise InvalidOptionError(f"Unknown --parallel '{mode}'; use one of {', '.join(PARALLEL)}.")


def is_main_process() -> bool:
    """False in every process of a launch but the first (they stay silent, write nothing)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def join_parallel(mode: str) -> Group:
    """The process group for ``mode`` (a group of one for ``none``)."""
    check_parallel(mode)
    if mode == "none":
        return Group()
    import torch

    if torch.accelerator.device_count() == 0:
        raise DeviceError(f"--parallel {mode} splits work across GPUs and this machine has none.")
    group = join()
    if not group.active:
        raise InvalidOptionError(f"--parallel {mode} needs several processes; {LAUNCH_HINT}.")
    return group


def leave_parallel(meet: bool = True) -> None:
    """End this process's part in the launch (no-op outside one).

    After a run the processes meet at a barrier first: the first one is still writing
    the video when the others finish sampling, and a gloo group torn down on one side
    while the other still holds its connections can abort the process at exit. A process
    that failed leaves without meeting (``meet=False``): the others may be inside a
    collective it will never join, and the launcher stops them when it exits.

    Drop the pipeline first: its parallelised transformers hold the groups. Their gloo
    threads must end here, while Python still runs, and it takes a collection to free the
    groups (reference cycles hold them; ``destroy_process_group`` alone leaves the threads
    running). Left to the interpreter's shutdown, a thread that touches a Python object
    then can be stopped inside C++, and the process aborts ("terminate called without an
    active exception"; ``tests/conftest.py``'s launcher fails whenever threads are left)."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if meet:
            dist.barrier()
        dist.destroy_process_group()
        gc.collect()


def parallel_device(group: Group):
    """Each process computes on its own GPU (``LOCAL_RANK``)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(group.local_rank)
        return torch.device("cuda", group.local_rank)
    return torch.device("cpu")  # gloo processes (the CPU test of this wiring)


def apply_context_parallel(backbone, mode: str, group: Group, memory, cache: str) -> list[str]:
    """Split every transformer of ``backbone`` across ``group`` (``memory``: the run's
    :class:`~charanim.models.memory.MemorySettings`); returns the summary entry."""
    if not group.active:
        return []
    from diffusers.models._modeling_parallel import ContextParallelConfig

    from charanim.models.memory import transformers_of

    if memory.offloads or memory.max_vram_gb is not None:
        raise IncompatibleError(
            "--parallel keeps the whole model on every GPU; it cannot be combined with --offload or --max-vram."
        )
    if memory.attention == "xformers":
        raise IncompatibleError("--parallel works with --attention sdpa or flash, not xformers.")
    if cache != "none":
        raise IncompatibleError(
            f"--cache {cache} cannot be combined with --parallel: each process would decide on its own "
            "which steps to skip."
        )
    if backbone.adapters:
        raise IncompatibleError(
            f"--parallel: the {', '.join(backbone.adapters)} conditioner feeds adapters that need the whole "
            "token sequence; run it in one process."
        )
    if mode == "ring" and memory.attention != "flash":
        raise IncompatibleError("--parallel ring needs --attention flash (it merges partial attentions).")
    for transformer in transformers_of(backbone):
        if getattr(transformer, "_cp_plan", None) is None:
            raise IncompatibleError(
                f"--parallel: {type(transformer).__name__} ({backbone.family} models) has no context-parallel "
                "plan in diffusers; run it in one process (with --offload if it does not fit)."
            )
        if transformer._parallel_config is None:
            if mode == "ulysses":
                config = ContextParallelConfig(ulysses_degree=group.world, ulysses_anything=True)
            else:
                config = ContextParallelConfig(ring_degree=group.world, ring_anything=True)
            transformer.enable_parallelism(config=config)
    return [f"parallel={mode}:{group.world}"]
