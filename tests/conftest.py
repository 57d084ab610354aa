"""Shared fixtures: small real media and tiny random models saved to disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Two cores on the reference machine: use both, never oversubscribe.
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """Converted weights (FID's Inception) go to a temporary cache, not the user's."""
    os.environ["CHARANIM_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    from charanim.testing import write_moving_figure_video, write_reference_image

    root = tmp_path_factory.mktemp("media")
    return {
        "drive": write_moving_figure_video(root / "drive.mp4", frames=12, size=(64, 48), fps=8.0),
        "reference": write_reference_image(root / "reference.png", size=(48, 64)),
        "reference_rgba": write_reference_image(root / "reference_rgba.png", size=(48, 64), mode="RGBA"),
    }


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from charanim.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", window_frames=8, window_overlap=2)


@pytest.fixture(scope="session")
def tiny_vae_model(tmp_path_factory) -> Path:
    from charanim.testing import make_tiny_model

    return make_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-vae", vae=True, window_frames=9, window_overlap=5
    )


@pytest.fixture(scope="session")
def tiny_wan_i2v(tmp_path_factory) -> Path:
    from charanim.testing import make_tiny_wan_i2v

    return make_tiny_wan_i2v(tmp_path_factory.mktemp("models") / "wan-i2v")


@pytest.fixture(scope="session")
def tiny_wan_animate(tmp_path_factory) -> Path:
    from charanim.testing.tiny_models import make_tiny_wan_animate

    return make_tiny_wan_animate(tmp_path_factory.mktemp("models") / "wan-animate")


@pytest.fixture(scope="session")
def tiny_wan_animate2(tmp_path_factory) -> Path:
    from charanim.testing.tiny_models import make_tiny_wan_animate2

    return make_tiny_wan_animate2(tmp_path_factory.mktemp("models") / "wan-animate-2")


@pytest.fixture
def fresh_plugins():
    """Reload plugins around a test that changes the environment or entry points."""
    from charanim.plugins import get_plugins

    get_plugins.cache_clear()
    yield
    get_plugins.cache_clear()


#: the ``charanim`` command as one process of a torchrun launch. Without GPUs, CPU
#: processes over gloo stand in for them (diffusers gives each process the device
#: ``rank % torch.accelerator.device_count()``: told there is one, it takes the CPU).
#: Gloo threads still running when the command returns would be stopped mid-C++ by the
#: interpreter's shutdown, which aborts a process now and then; a launch that leaves
#: them fails here every time instead.
TORCHRUN_LAUNCHER = """
import os
import sys
import torch
if not torch.cuda.is_available():
    torch.accelerator.device_count = lambda: 1
from charanim.cli.app import main
sys.argv = ["charanim", *sys.argv[1:]]

def gloo_threads():
    names = []
    for task in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else []:
        try:
            names.append(open(f"/proc/self/task/{task}/comm").read().strip())
        except OSError:  # a thread that has just ended
            pass
    return [name for name in names if "gloo" in name]

try:
    main()
finally:
    left = gloo_threads()
    if left:
        print("gloo threads left at exit: " + ", ".join(left), file=sys.stderr)
        os._exit(3)
"""


@pytest.fixture
def torchrun(tmp_path):
    """Run ``charanim ARGS`` in two processes of a torchrun launch, one thread each."""
    launcher = tmp_path / "torchrun_launcher.py"
    launcher.write_text(TORCHRUN_LAUNCHER)

    def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                   "--master_port", str(port), str(launcher), *args]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)

    return run
