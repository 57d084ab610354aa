"""Small synthetic media for tests: a figure that moves, on a plain background."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from charanim.io.video import write_video


def moving_figure_frames(frames: int = 12, size: tuple[int, int] = (64, 48), seed: int = 0) -> np.ndarray:
    """``uint8 [F, H, W, 3]``: a stick figure whose arm swings and body slides right."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = tuple(int(v) for v in rng.integers(150, 230, 3))
    colour = tuple(int(v) for v in rng.integers(0, 110, 3))
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        image = Image.new("RGB", size, background)
        draw = ImageDraw.Draw(image)
        cx = width * (0.35 + 0.3 * i / max(frames - 1, 1))
        top, hip = height * 0.2, height * 0.6
        head = height * 0.08
        draw.ellipse([cx - head, top - head, cx + head, top + head], fill=colour)
        draw.line([cx, top + head, cx, hip], fill=colour, width=3)
        angle = np.pi * (0.2 + 0.6 * abs(np.sin(i * 0.6)))
        shoulder = top + 2 * head
        draw.line(
            [cx, shoulder, cx + np.cos(angle) * height * 0.25, shoulder - np.sin(angle) * height * 0.25],
            fill=colour,
            width=3,
        )
        draw.line([cx, shoulder, cx - height * 0.15, shoulder + height * 0.15], fill=colour, width=3)
        draw.line([cx, hip, cx - height * 0.1, height * 0.9], fill=colour, width=3)
        draw.line([cx, hip, cx + height * 0.1, height * 0.9], fill=colour, width=3)
        out[i] = np.asarray(image)
    return out


def write_moving_figure_video(
    path: Path, frames: int = 12, size=(64, 48), fps: float = 8.0, seed: int = 0
) -> Path:
    write_video(path, moving_figure_frames(frames, size, seed), fps)
    return Path(path)


def write_reference_image(path: Path, size=(48, 64), mode: str = "RGB", seed: int = 1) -> Path:
    """A figure on a background (or on transparency for ``RGBA``/``LA``; grey levels for ``L``)."""
    figure = Image.fromarray(moving_figure_frames(1, size, seed)[0])
    if mode in ("RGBA", "LA"):
        alpha = Image.new("L", size, 0)
        ImageDraw.Draw(alpha).rectangle(
            [size[0] // 4, size[1] // 8, 3 * size[0] // 4, 7 * size[1] // 8], fill=255
        )
        figure = figure.convert(mode[:-1])
        figure.putalpha(alpha)
    else:
        figure = figure.convert(mode)
    figure.save(path)
    return Path(path)


def write_humanoid_world(
    out: Path, *, count: int, seed: int, frames: int, shard_size: int, test_fraction: float, size: int = 32
) -> Path:
    """A small procedural world of humanoid pairs (one body plan, so the pose conditioner
    applies to every pair) in ``out``; returns its manifest."""
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world

    config = WorldConfig(size=(size, size), frames=frames, body_plans=("humanoid",), cross_plan=0.0)
    run_world(
        WorldJob(
            out, count=count, seed=seed, config=config, shard_size=shard_size, test_fraction=test_fraction
        )
    )
    return out / "manifest.jsonl"


def prepared_inputs(pipeline, reference_path: Path, driving_path: Path, frames: int = 12, fps: float = 8.0,
                    size: tuple[int, int] = (32, 32)):  # fmt: skip
    """What ``pipeline`` takes for one run, as ``animate`` makes it from two files: the
    reference fitted to ``size`` (``float [3, H, W]`` in [-1, 1]), every conditioner's
    condition from the first ``frames`` of the driving video at ``fps``, and the spec."""
    from charanim.api import _fit_reference
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.io import read_image, read_video

    spec = OutputSpec(size[0], size[1], frames, fps)
    image = read_image(reference_path)
    video = read_video(driving_path, fps=fps, max_frames=frames)
    conditions = [c.prepare(Driving(video=video), Reference(image), spec) for c in pipeline.conditioners]
    return _fit_reference(image, spec), conditions, spec
