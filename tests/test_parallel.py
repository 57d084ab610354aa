"""--parallel: diffusers' context parallelism across the processes of a torchrun launch.

There is no GPU here, so the end-to-end test runs two CPU processes over gloo, with
torch told the CPU is one accelerator (diffusers picks each process's device as
``rank % torch.accelerator.device_count()``). Ulysses attention then splits the tokens
across the two processes, and the frames must be the single process's.
"""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from charanim.api import load_pipeline
from charanim.errors import DeviceError, IncompatibleError, InvalidOptionError
from charanim.models.memory import MemorySettings
from charanim.models.parallel import apply_context_parallel, check_parallel, join_parallel
from charanim.training.distributed import Group


def test_two_processes_make_the_single_process_frames(tmp_path, tiny_model, media, torchrun):
    from charanim.io.video import read_video

    common = [str(media["reference"]), str(media["drive"]), "--model", str(tiny_model), "--conditioner", "rgb",
              "--steps", "3", "--seed", "5", "--dtype", "float32", "--json"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "charanim", "animate", *common, "-o", str(tmp_path / "one.mp4")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun(["animate", *common, "-o", str(tmp_path / "two.mp4"), "--parallel", "ulysses"])
    assert two.returncode == 0, two.stderr[-3000:]
    assert '"parallel=ulysses:2"' in two.stdout  # one summary: the first process's
    assert two.stdout.count('"output"') == 1
    a, b = read_video(tmp_path / "one.mp4").frames, read_video(tmp_path / "two.mp4").frames
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def test_parallel_needs_a_launch_and_gpus(monkeypatch):
    with pytest.raises(InvalidOptionError, match="Unknown --parallel"):
        check_parallel("pipeline")
    assert join_parallel("none") == Group()
    monkeypatch.setattr(torch.accelerator, "device_count", lambda: 0)
    with pytest.raises(DeviceError, match="has none"):
        join_parallel("ulysses")
    monkeypatch.setattr(torch.accelerator, "device_count", lambda: 1)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(InvalidOptionError, match="torchrun --nproc_per_node"):
        join_parallel("ring")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InvalidOptionError, match="drop --device cpu"):
        load_pipeline("charanim-tiny", device="cpu", parallel="ulysses")


def _backbone(transformer, adapters=None):
    return SimpleNamespace(transformer=transformer, adapters=adapters or {}, family="tiny", pipe=None)


def test_combinations_that_would_desynchronise_the_processes_are_refused(tiny_model, tiny_wan_animate):
    group = Group(rank=0, world=2)
    tiny = load_pipeline(tiny_model, "rgb", device="cpu").backbone
    memory = MemorySettings()
    with pytest.raises(IncompatibleError, match="--cache first-block cannot be combined"):
        apply_context_parallel(tiny, "ulysses", group, memory, "first-block")
    with pytest.raises(IncompatibleError, match="needs --attention flash"):
        apply_context_parallel(tiny, "ring", group, memory, "none")
    with pytest.raises(IncompatibleError, match="not xformers"):
        apply_context_parallel(tiny, "ulysses", group, MemorySettings(attention="xformers"), "none")
    with pytest.raises(IncompatibleError, match="--offload"):
        apply_context_parallel(tiny, "ulysses", group, MemorySettings(offload="model"), "none")
    with pytest.raises(IncompatibleError, match="audio-face conditioner feeds adapters"):
        apply_context_parallel(
            _backbone(tiny.transformer, {"audio-face": None}), "ulysses", group, memory, "none"
        )
    animate = load_pipeline(tiny_wan_animate, device="cpu").backbone
    with pytest.raises(IncompatibleError, match="WanAnimateTransformer3DModel .* no context-parallel plan"):
        apply_context_parallel(animate, "ulysses", group, memory, "none")
    assert apply_context_parallel(tiny, "ulysses", Group(), memory, "none") == []


def test_cli_refuses_parallel_without_a_launch(tmp_path, tiny_model, media):
    from typer.testing import CliRunner

    from charanim.cli.app import app

    result = CliRunner().invoke(
        app,
        ["animate", str(media["reference"]), str(media["drive"]), "-o", str(tmp_path / "o.mp4"),
         "--model", str(tiny_model), "--conditioner", "rgb", "--parallel", "ulysses"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--parallel ulysses" in result.output and "Traceback" not in result.output
