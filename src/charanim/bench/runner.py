"""Running contenders (models and baselines) over cases, with a per-case cache.

Every (contender, case) output is cached in ``REPORT/cache/<contender>/<case>.npz``
(written atomically), so a killed run continues, ``--shard i/n`` processes share the
work, and adding a model to a finished report only runs that model.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from charanim import __version__
from charanim.bench import baselines
from charanim.bench.cases import BenchCase
from charanim.errors import CharanimError
from charanim.io.atomic import atomic_output
from charanim.models.config import CONFIG_NAME


@dataclass
class Contender:
    name: str
    kind: str  # "model" or "baseline"
    key: str
    run: Callable[[BenchCase], np.ndarray | None]
    parameters: int | None = None
    details: dict | None = None


def baseline_contenders() -> list[Contender]:
    return [
        Contender("static", "baseline", "baseline-static", baselines.static),
        Contender("skeleton-warp", "baseline", "baseline-skeleton-warp", baselines.skeleton_warp),
        Contender("flow-warp", "baseline", "baseline-flow-warp", baselines.flow_warp),
    ]


def model_contender(
    spec: str,
    steps: int | None,
    seed: int,
    conditioner: str | None,
    device: str,
    text: bool = True,
    label: str = "",
    strength: float | None = None,
    restore_detail: float | None = None,
    scene: str | None = None,
    refine: bool | None = None,
) -> Contender:
    """A model as a contender. ``text=False`` drops the prompt (the text-guidance
    ablation); ``label`` is appended to its name to tell variants apart; ``steps``,
    ``strength``, ``restore_detail``, ``scene`` and ``refine`` override the model's own
    sampler defaults when given (``restore_detail=0``: the detail-restoration ablation;
    ``refine=False``: the refiner's)."""
    from charanim.api import _fit_reference, load_pipeline
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.engine.pipeline import SamplingSettings
    from charanim.io.image import image_from_array
    from charanim.io.video import Video

    pipeline = load_pipeline(spec, conditioner, device)
    backbone = pipeline.backbone
    identity = json.dumps(
        [str(backbone.path or spec), steps, seed, conditioner, __version__, _fingerprint(backbone.path)]
        + ([] if text else ["no-text"])
        + ([] if strength is None else [f"strength={strength}"])
        + ([] if restore_detail is None else [f"restore_detail={restore_detail}"])
        + ([] if scene is None else [f"scene={scene}"])
        + ([] if refine is None else [f"refine={refine}"])
    )
    key = "model-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
    name = Path(spec).name if Path(spec).exists() else spec
    if name == "model" and Path(spec).exists():  # runs/<run>/model -> <run>
        name = Path(spec).resolve().parent.name
    name += label

    def run(case: BenchCase) -> np.ndarray:
        height, width = case.reference.shape[:2]
        frames = len(case.driving)
        spec_ = OutputSpec(width, height, frames, case.fps)
        video = Video(case.driving, case.fps, case.fps, (width, height), np.arange(frames))
        alpha = case.reference_mask if case.reference_mask is not None else None
        image = image_from_array(case.reference, alpha)
        driving = Driving(video=video, keypoints=case.driving_keypoints)
        reference = Reference(image, keypoints=case.reference_keypoints)
        conditions = [c.prepare(driving, reference, spec_) for c in pipeline.conditioners]
        result = pipeline(
            _fit_reference(image, spec_), conditions, spec_, prompt=case.meta.get("prompt", "") if text else "",
            settings=SamplingSettings(steps=steps, strength=strength, restore_detail=restore_detail, scene=scene, refine=refine), generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        return result.frames

    details = {"path": str(backbone.path) if backbone.path else spec, "backbone": backbone.family,
               "conditioners": [c.name for c in pipeline.conditioners], "steps": steps or backbone.config.sampler.steps, "text": text,
               "strength": backbone.config.sampler.strength if strength is None else strength,
               "restore_detail": backbone.config.sampler.restore_detail if restore_detail is None else restore_detail,
               "scene": backbone.config.sampler.scene if scene is None else scene,
               "refine": backbone.refiner is not None if refine is None else refine}  # fmt: skip
    return Contender(name, "model", key, run, backbone.parameter_count(), details)


def driven_by_target_skeleton(contender: Contender) -> Contender:
    """A pose model driven by each case's true target skeleton instead of the retargeted
    driving one: if it scores far above the model as run, retargeting limits the model;
    if not, the model itself does."""
    return Contender(
        f"{contender.name} (target's skeleton)",
        contender.kind,
        f"{contender.key}-target-pose",
        lambda case: contender.run(case.with_target_skeleton()),
        contender.parameters,
        {**(contender.details or {}), "driven_by": "the target's own skeleton"},
    )


def _fingerprint(path: Path | None) -> str:
    """Changes when a model directory's weights or its own defaults (``charanim.json``:
    steps, strength...) change, so its cached outputs are not reused."""
    if path is None or not Path(path).is_dir():
        return ""
    stats = sorted(
        (str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime))
        for p in Path(path).rglob("*.safetensors")
    )
    config = Path(path) / CONFIG_NAME
    defaults = config.read_text() if config.is_file() else ""
    return hashlib.sha256(json.dumps([stats, defaults]).encode()).hexdigest()[:12]


def cached_output(
    out: Path, contender: Contender, case: BenchCase
) -> tuple[np.ndarray | None, float | None, str | None]:
    """(frames, seconds, error): from the cache, or by running the contender."""
    file = out / "cache" / contender.key / f"{case.id}.npz"
    if file.is_file():
        with np.load(file, allow_pickle=False) as data:
            frames = data["frames"] if data["frames"].size else None
            error = str(data["error"]) or None
            return frames, float(data["seconds"]), error
    file.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    frames, error = None, None
    try:
        frames = contender.run(case)
    except CharanimError as exc:
        error = str(exc)
    seconds = time.perf_counter() - started
    with atomic_output(file) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                frames=frames if frames is not None else np.zeros(0, np.uint8),
                seconds=seconds,
                error=error or "",
            )
    return frames, seconds, error


def run_cases(
    cases: list[BenchCase],
    contenders: list[Contender],
    metrics: list,
    out: Path,
    shard: tuple[int, int] = (0, 1),
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Scores of every (case, contender) this shard owns, case by case."""
    part, parts = shard
    mine = [c for i, c in enumerate(cases) if i % parts == part]
    set_metrics = [m for m in metrics if getattr(m, "set_level", False)]
    rows = []
    for number, case in enumerate(mine):
        row = {
            "id": case.id,
            "group": case.group,
            "motion": case.motion,
            "motion_amount": None if case.motion_amount is None else round(case.motion_amount, 4),
            "motion_band": case.motion_band,
            "error": case.error,
            "scores": {},
            "seconds": {},
            "errors": {},
        }
        if case.error is None:
            for contender in contenders:
                frames, seconds, error = cached_output(out, contender, case)
                if error or frames is None:
                    row["errors"][contender.name] = error or "not applicable"
                    continue
                row["seconds"][contender.name] = round(seconds, 4)
                row["scores"][contender.name] = {
                    m.name: _round(m.compute(case, frames))
                    for m in metrics
                    if (case.target is not None or not m.needs_target) and not getattr(m, "set_level", False)
                }
                if case.target is not None:
                    for metric in set_metrics:
                        cached_features(out, contender.key, case.id, metric, frames)
            if case.target is not None:  # the truth's features once per case, not per contender
                for metric in set_metrics:
                    cached_features(out, "target", case.id, metric, case.target)
        rows.append(row)
        if on_progress:
            on_progress(number + 1, len(mine))
    return rows


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def features_file(out: Path, key: str, case_id: str, metric_name: str) -> Path:
    return out / "cache" / key / f"{case_id}.{metric_name}.npy"


def cached_features(out: Path, key: str, case_id: str, metric, frames: np.ndarray) -> np.ndarray:
    """A set metric's features of one case's frames (of a contender, or of the target)."""
    file = features_file(out, key, case_id, metric.name)
    if file.is_file():
        return np.load(file, allow_pickle=False)
    features = metric.features(frames)
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(file) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, features)
    return features
