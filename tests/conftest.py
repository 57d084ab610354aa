"""Shared fixtures: small real media and tiny random models saved to disk."""

from __future__ import annotations

import os
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
