"""Train-step overhead: ``charanim train`` vs a bare diffusers + peft loop.

Same Wan transformer (the recipe's), same trainable parameters (all, or the same
LoRA), same input tensor shapes, same optimizer. charanim's step is the real one (``DenoiserTrainer._train_step``): data from
a world manifest, conditioner rendering and augmentation, autoencoder latents (cached
after the first epoch), condition dropout, flow-matching loss, clipping, AdamW. The bare
step is what a hand-written diffusers + peft script does with tensors already in
memory: forward, MSE, backward, clip, AdamW. Steps alternate so machine noise hits both
alike, in rounds (the ratio pools them; each round's own is reported too, as the machine's
speed drifts); medians are reported, with the ratio and the time charanim spends
building a batch (in a background thread beside the step where the machine has cores
to spare, or with --prefetch; in the step with --no-prefetch; each
charanim step is timed until that thread has built the next batch, so none of the
building runs on into the bare step and is counted there). Then the same
again with charanim's batches built beforehand (``ratio_batches_prebuilt``): what the
trainer adds to a step apart from making its data. On a machine whose cores the step
keeps busy (2 cores here) building a batch cannot hide behind the step, so ``ratio`` is
about 1 + batch building / step. ``--threads 1`` leaves a core to the batch (both loops'
torch on one thread, the batch built in a thread beside them): the trainer as it runs
on a machine with cores beyond its step's, or with a GPU.
Peak memory (max RSS) is measured in two fresh subprocesses, one per loop.

    python benchmarks/train_step_overhead.py [--recipe recipes/tiny/stage1-pose.yaml] [--lora] [--steps 12] [--rounds 3] [--batch 8] [--json]

The model starts from the shipped charanim-tiny (``--init``; ``--init ''`` uses the
recipe's own ``model.init`` and autoencoder, which exist only after training them), so
the benchmark runs on a fresh install.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _jsonable(value):
    return str(value) if isinstance(value, Path) else list(value)


def _setup(work: Path, args):
    """The recipe's own model (charanim-tiny stage 1 by default: its transformer, its
    trained autoencoder) on a small world of the recipe's frame size."""
    from charanim.config import resolve
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world
    from charanim.training.recipe import Recipe
    from charanim.training.trainer import DenoiserTrainer

    base = resolve(Recipe, args.recipe)
    size = (base.model.width, base.model.height)
    if not (work / "world" / "manifest.jsonl").is_file():
        config = WorldConfig(size=size, frames=base.model.frames, body_plans=("humanoid",), cross_plan=0.0)
        run_world(WorldJob(work / "world", count=2 * args.batch, seed=5, config=config, test_fraction=0.0))
    overrides = [
        f"data.manifest={work / 'world' / 'manifest.jsonl'}", f"training.batch_size={args.batch}",
        "training.gradient_accumulation=1", "training.threads=0", "training.ema=0", "training.steps=1000000",
        "checkpoint.every=1000000", "validation.samples=0",
    ]  # fmt: skip
    if args.init:
        overrides.append(f"model.init={args.init}")
    overrides += args.set or []
    if args.no_prefetch:
        overrides.append("training.prefetch=false")
    if args.prefetch:
        overrides.append("training.prefetch=true")
    if args.lora:
        overrides += ["lora.rank=16", "lora.alpha=16", "lora.name=bench", "lora.targets=[ffn]"]
    recipe = resolve(Recipe, args.recipe, overrides)
    return DenoiserTrainer(recipe, work / "run", resume=False, force=True, on_progress=None), recipe


class BareLoop:
    """The hand-written reference: a fresh copy of the same transformer, peft LoRA on the
    same modules, the captured input shapes, nothing else. Built from files in WORK/bare,
    so the memory probe can build it without charanim's trainer in the process."""

    def __init__(self, folder: Path):
        from diffusers import WanTransformer3DModel
        from peft import LoraConfig
        from safetensors.torch import load_file

        from charanim.training.lora import TARGETS

        settings = json.loads((folder / "settings.json").read_text())
        self.model = WanTransformer3DModel.from_config(settings["transformer"])
        lora = settings["lora"]
        if lora is not None:
            self.model.requires_grad_(False)
            modules = [name for group in lora["targets"] for name in TARGETS[group]]
            self.model.add_adapter(
                LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], target_modules=modules)
            )
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=settings["lr"], weight_decay=settings["weight_decay"]
        )
        captured = load_file(folder / "inputs.safetensors")
        self.inputs = {k: torch.randn_like(v) if k != "timestep" else v for k, v in captured.items()}
        self.model.train()

    @staticmethod
    def save(folder: Path, trainer, recipe, captured: dict) -> Path:
        import dataclasses

        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        settings = {
            "transformer": dict(trainer.backbone.transformer.config),
            "lora": dataclasses.asdict(recipe.lora) if recipe.lora is not None else None,
            "lr": recipe.optim.lr, "weight_decay": recipe.optim.weight_decay,
        }  # fmt: skip
        # a config loaded from a folder holds its path (_name_or_path) as a Path
        (folder / "settings.json").write_text(json.dumps(settings, default=_jsonable))
        save_file({k: v.contiguous() for k, v in captured.items()}, folder / "inputs.safetensors")
        return folder

    def step(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(**self.inputs, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(out, torch.randn_like(out))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimizer.step()
        return loss.item()


def _step(trainer) -> float:
    """One real training step, advancing the step counter as the run loop does (the next
    batch is prefetched for the next step)."""
    loss = trainer._train_step()
    trainer.step += 1
    return loss


def _prefetched(trainer) -> None:
    """Wait for the batch the prefetch thread is building for the next step."""
    for queued in trainer._queued.values():
        queued.result()


def _alternate(trainer, bare: BareLoop, steps: int) -> tuple[list[float], list[float]]:
    """Seconds of ``steps`` steps of each loop, one of each in turn (machine noise hits both alike).
    charanim's step is timed until the next batch is built too: left building, it would
    run on into the bare step and be counted there."""
    ours, theirs = [], []
    for _ in range(steps):
        tic = time.perf_counter()
        _step(trainer)
        _prefetched(trainer)
        ours.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        bare.step()
        theirs.append(time.perf_counter() - tic)
    return ours, theirs


def _capture_inputs(trainer) -> dict:
    captured = {}

    def hook(module, args, kwargs):
        if not captured:
            names = ("hidden_states", "timestep", "encoder_hidden_states")
            captured.update({n: a.detach().clone() for n, a in zip(names, args, strict=False)})
            captured.update({k: v.detach().clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    handle = trainer.backbone.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    _step(trainer)
    handle.remove()
    return captured


def _timed_builder(trainer) -> list[float]:
    spent: list[float] = []
    build = trainer.builder.build

    def timed(*args, **kwargs):
        tic = time.perf_counter()
        try:
            return build(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - tic)

    trainer.builder.build = timed
    return spent


def _peak_rss(work: Path, which: str, args) -> float:
    command = [sys.executable, __file__, "--only", which, "--work", str(work), "--steps", str(args.steps),
               "--batch", str(args.batch), "--recipe", str(args.recipe), "--threads", str(args.threads)]  # fmt: skip
    command += ["--lora"] if args.lora else []
    command += ["--no-prefetch"] if args.no_prefetch else []
    command += ["--prefetch"] if args.prefetch else []
    command += [f"--init={args.init}"]
    command += [f"--set={item}" for item in args.set or []]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12, help="timed steps of each loop, per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (the ratio pools them)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/tiny/stage1-pose.yaml"))
    parser.add_argument(
        "--lora", action="store_true", help="train a rank-16 FFN LoRA instead of the full model"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads of both loops (1: a core left to the batch)"
    )
    parser.add_argument("--no-prefetch", action="store_true", help="build each batch in the step")
    parser.add_argument(
        "--prefetch", action="store_true", help="build each batch in a background thread, whatever the cores"
    )
    from charanim.models.tiny import NAME, TinyFamily

    # the embedded model (its transformer's shape, its autoencoder) is on every install
    shipped = TinyFamily.named_models()[NAME]
    parser.add_argument(
        "--init", default=str(shipped), help="model to start from (default: the shipped charanim-tiny)"
    )
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("charanim", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from charanim.bench.speed import peak_rss_mb
    from charanim.training.trainer import prefetching

    work = args.work or Path(tempfile.mkdtemp(prefix="charanim-train-bench-"))
    if args.only == "bare":  # memory probe: the bare loop alone in a fresh process
        bare = BareLoop(work / "bare")
        for _ in range(args.steps + 2):
            bare.step()
        print(peak_rss_mb())
        return
    trainer, recipe = _setup(work, args)
    captured = _capture_inputs(trainer)
    if args.only == "charanim":  # memory probe: charanim's trainer alone
        for _ in range(args.steps + 2):
            _step(trainer)
        print(peak_rss_mb())
        return
    bare = BareLoop(BareLoop.save(work / "bare", trainer, recipe, captured))
    for _ in range(2):  # warm-up: fills the latent cache (one epoch) and allocator pools
        _step(trainer)
        bare.step()

    data_seconds = _timed_builder(trainer)
    # rounds of alternating steps: the machine's speed drifts over minutes (0.02 in the
    # ratio between runs here), so one round's ratio alone says little; the pooled ratio
    # and each round's are reported
    rounds = [_alternate(trainer, bare, args.steps) for _ in range(args.rounds)]
    ours = [seconds for round_ours, _ in rounds for seconds in round_ours]
    theirs = [seconds for _, round_theirs in rounds for seconds in round_theirs]
    # the same, the batches built beforehand: what the framework itself adds to a step
    # (loss, dropout, in-context layout, logging hooks) apart from building its batches
    _prefetched(trainer)  # the prefetch thread idle from here on
    prebuilt = {trainer.step + i: trainer._batch(trainer.step + i, 0) for i in range(args.steps)}
    trainer._next_batch = lambda step, part: prebuilt.pop(step)
    ours_prebuilt, theirs_prebuilt = _alternate(trainer, bare, args.steps)
    result = {
        "recipe": str(args.recipe), "init": args.init, "lora": args.lora, "batch": args.batch, "steps": args.steps,
        "rounds": args.rounds,
        "transformer_input": list(captured["hidden_states"].shape),
        "trainable_parameters": sum(p.numel() for p in bare.parameters),
        "charanim_step_s": round(statistics.median(ours), 4),
        "bare_step_s": round(statistics.median(theirs), 4),
        "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
        "ratio_rounds": [round(statistics.median(o) / statistics.median(t), 3) for o, t in rounds],
        "charanim_data_s": round(statistics.median(data_seconds), 4),
        "ratio_batches_prebuilt": round(statistics.median(ours_prebuilt) / statistics.median(theirs_prebuilt), 3),
        "prefetch": prefetching(recipe.training.prefetch),
        "peak_rss_mib": {"charanim": round(_peak_rss(work, "charanim", args)), "bare": round(_peak_rss(work, "bare", args))},
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    from charanim.errors import CharanimError

    try:
        main()
    except CharanimError as error:  # a bad --init, --recipe or --set: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
