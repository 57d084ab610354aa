"""``synthesize bootstrap``: pseudo cross-identity pairs made by a pose model.

For candidate i, a real clip (source) and another character (reference) are drawn
deterministically from (seed, i); the pose model animates the reference with the
source's motion; the result is scored (``quality.py``). Every candidate's arrays and
scores are stored (``shards/``, ``candidates.jsonl``); ``manifest.jsonl`` lists the ones
that pass ``min_score`` and ``keep_top``, so filtering can be redone without generating
again. Triplets are written in the orientation that keeps the target real:

    driving   = the generated video (another identity, the source's motion)
    reference = a frame of the source
    target    = the source clip

Like ``synthesize world``, it is resumable (completed shards are kept) and shardable.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from charanim.conditioning import Driving, OutputSpec, Reference
from charanim.errors import CharanimError, IncompatibleError, InvalidOptionError
from charanim.io.atomic import atomic_output, check_output_folder, write_text_atomic
from charanim.io.image import image_from_array
from charanim.io.pixels import to_pixels
from charanim.io.video import Video
from charanim.synthesis.quality import histogram_text, score_video
from charanim.synthesis.sources import open_sources
from charanim.synthetic.samples import MAX_KEYPOINTS
from charanim.synthetic.world import SHARD_ARRAYS, shard_name

#: a test seam: (candidate index, generated frames, reference image) -> frames to score
Hook = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BootstrapJob:
    model: str
    driving: Path
    references: Path
    out: Path
    count: int
    seed: int = 0
    #: None: the model's own sampler defaults (steps and strength)
    steps: int | None = None
    min_score: float = 0.5
    keep_top: float = 1.0
    shard_size: int = 20
    shard: tuple[int, int] = (0, 1)
    device: str = "auto"

    def settings(self) -> dict:
        return {"model": str(self.model), "driving": str(self.driving), "references": str(self.references),
                "seed": self.seed, "steps": self.steps, "shard_size": self.shard_size}  # fmt: skip


def _pick(seed: int, index: int, count: int, tag: str) -> int:
    digest = hashlib.blake2b(repr((seed, tag, index)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % count


def _pad(keypoints: np.ndarray) -> np.ndarray:
    pad = MAX_KEYPOINTS - keypoints.shape[-2]
    return (
        np.concatenate([keypoints, np.zeros((*keypoints.shape[:-2], pad, 3), keypoints.dtype)], -2)
        if pad > 0
        else keypoints
    )


class Bootstrapper:
    def __init__(self, job: BootstrapJob, tamper: Hook | None = None):
        from charanim.api import load_pipeline

        self.job = job
        self.tamper = tamper  # tests plant a bad result through this
        self.pipeline = load_pipeline(job.model, device=job.device)
        names = [c.name for c in self.pipeline.conditioners]
        if names != ["pose"]:
            raise IncompatibleError(
                f"--model must be a pose-based model (trained with the pose conditioner); this one uses {', '.join(names)}."
            )
        self.sources = open_sources(job.driving, "driving")
        self.references = open_sources(job.references, "references")
        # references by body format where the manifest says it, so a quadruped's motion
        # is given a quadruped (drawn blind, most pairs of a many-plan world mismatch)
        self.references_by_format: dict[str, list[int]] = {}
        for position in range(len(self.references)):
            fmt = self.references.body_format(position)
            if fmt is None:
                self.references_by_format = {}
                break
            self.references_by_format.setdefault(fmt, []).append(position)

    def candidate(self, index: int) -> tuple[dict[str, np.ndarray] | None, dict]:
        job, pipeline = self.job, self.pipeline
        config = pipeline.backbone.config
        source = self.sources.source(_pick(job.seed, index, len(self.sources), "source"))
        same_format = self.references_by_format.get(source.keypoints.header.body_format)
        if same_format:
            reference = self.references.reference(
                same_format[_pick(job.seed, index, len(same_format), "reference")]
            )
        else:
            reference = self.references.reference(_pick(job.seed, index, len(self.references), "reference"))
        record = {"index": index, "source": source.key, "reference_character": reference.key}
        if reference.key == source.key:
            return None, {**record, "skipped": "reference is the source's own character"}
        if reference.keypoints.header.body_format != source.keypoints.header.body_format:
            return None, {**record, "skipped": "different body formats"}
        frames = min(len(source.frames), config.window_frames * 2)
        spec = OutputSpec(config.width, config.height, frames, source.fps)
        video = Video(
            source.frames[:frames],
            source.fps,
            source.fps,
            (source.frames.shape[2], source.frames.shape[1]),
            np.arange(frames),
        )
        conditioner = pipeline.conditioners[0]
        condition = conditioner.prepare(
            Driving(video=video, keypoints=source.keypoints),
            Reference(image_from_array(reference.image), keypoints=reference.keypoints),
            spec,
        )
        reference_tensor = to_pixels(reference.image)
        from charanim.engine.pipeline import SamplingSettings

        result = pipeline(reference_tensor, [condition], spec, settings=SamplingSettings(steps=job.steps),
                          generator=torch.Generator().manual_seed(job.seed * 1_000_003 + index))  # fmt: skip
        generated = (
            result.frames if self.tamper is None else self.tamper(index, result.frames, reference.image)
        )
        skeletons = (condition.video > -0.9).any(0).numpy()
        scores = score_video(
            generated, condition.meta["keypoints"], skeletons, reference.image, reference.mask
        )
        still = int(_pick(job.seed, index, frames, "frame"))
        fmt = source.keypoints.header.body_format
        source_points = source.keypoints.body_array()[:frames]
        mask = (
            source.mask[:frames]
            if source.mask is not None
            else np.zeros(source.frames[:frames].shape[:3], np.uint8)
        )
        arrays = {
            "driving": generated, "driving_mask": np.zeros_like(mask), "driving_keypoints": _pad(condition.meta["keypoints"]),
            "reference": source.frames[still], "reference_mask": mask[still], "reference_keypoints": _pad(source_points[still]),
            "target": source.frames[:frames], "target_mask": mask, "target_keypoints": _pad(source_points),
        }  # fmt: skip
        caption = source.caption or {}
        record.update({
            "scores": scores, "frames": frames, "fps": source.fps, "width": config.width, "height": config.height,
            "driving": {"plan": reference.plan or source.plan, "keypoint_format": fmt, "appearance": reference.appearance},
            "reference": {"plan": source.plan, "keypoint_format": fmt, "appearance": caption.get("appearance", "")},
            "caption": {"motion": caption.get("motion", ""), "appearance": caption.get("appearance", ""),
                        "prompt": " ".join(v for v in (caption.get("appearance"), caption.get("motion")) if v)},
            "provenance": {"source": "bootstrap", "model": str(job.model), "seed": job.seed, "source_clip": source.key,
                           "generated_character": reference.key, "reference_frame": still},
        })  # fmt: skip
        return arrays, record


def _write_shard(job: BootstrapJob, worker: Bootstrapper, shard_index: int) -> int:
    start = shard_index * job.shard_size
    stop = min(start + job.shard_size, job.count)
    kept_arrays, records = [], []
    for index in range(start, stop):
        try:
            arrays, record = worker.candidate(index)
        except CharanimError as exc:  # an unreadable source is recorded, not fatal
            arrays, record = None, {"index": index, "skipped": str(exc)}
        if arrays is not None:
            record.update({"shard": f"shards/{shard_name(shard_index)}.npz", "position": len(kept_arrays)})
            kept_arrays.append(arrays)
        records.append(record)
    folder = job.out / "shards"
    if kept_arrays:
        with atomic_output(folder / f"{shard_name(shard_index)}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(
                    handle, **{k: np.stack([a[k] for a in kept_arrays]) for k in SHARD_ARRAYS}
                )
    write_text_atomic(
        folder / f"{shard_name(shard_index)}.jsonl", "".join(json.dumps(r) + "\n" for r in records)
    )
    return stop - start


def refilter(out: Path, min_score: float, keep_top: float) -> dict:
    """Rewrite ``candidates.jsonl`` and ``manifest.jsonl`` from the shards, with these thresholds."""
    records = []
    for fragment in sorted((out / "shards").glob("shard-*.jsonl")):
        records.extend(json.loads(line) for line in fragment.read_text().splitlines() if line.strip())
    records.sort(key=lambda r: r["index"])
    write_text_atomic(out / "candidates.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    scored = [r for r in records if "scores" in r]
    passing = [r for r in scored if r["scores"]["score"] >= min_score]
    passing.sort(key=lambda r: -r["scores"]["score"])
    kept = sorted(passing[: max(0, round(len(passing) * keep_top))], key=lambda r: r["index"])
    entries = [{**r, "id": f"bootstrap-{r['index']:07d}", "split": "train"} for r in kept]
    write_text_atomic(out / "manifest.jsonl", "".join(json.dumps(e) + "\n" for e in entries))
    return {
        "candidates": len(records), "scored": len(scored), "kept": len(kept),
        "skipped": {r["index"]: r["skipped"] for r in records if "skipped" in r},
        "score_histogram_before": histogram_text([r["scores"]["score"] for r in scored]),
        "score_histogram_after": histogram_text([r["scores"]["score"] for r in kept]),
    }  # fmt: skip


def run_bootstrap(job: BootstrapJob, tamper: Hook | None = None, on_progress=None) -> dict:
    if job.count < 1:
        raise InvalidOptionError("--count must be at least 1.")
    part, parts = job.shard
    if not 0 <= part < parts:
        raise InvalidOptionError(f"--shard {part}/{parts} is not valid: use i/n with 0 <= i < n.")
    check_output_folder(job.out)
    settings_file = job.out / "bootstrap.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != job.settings():
        raise CharanimError(f"'{job.out}' holds a bootstrap made with other settings; use a new folder.")
    total = (job.count + job.shard_size - 1) // job.shard_size
    mine = [i for i in range(total) if i % parts == part]
    done = {int(p.stem.split("-")[1]) for p in (job.out / "shards").glob("shard-*.jsonl")}
    todo = [i for i in mine if i not in done]
    started = time.perf_counter()
    # the model and the sources first: a bad -m, --driving or --references leaves no folder
    # behind (whose settings would then refuse the corrected command)
    worker = Bootstrapper(job, tamper) if todo else None
    (job.out / "shards").mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings_file, json.dumps(job.settings(), indent=2) + "\n")
    made = 0
    for number, shard_index in enumerate(todo):
        made += _write_shard(job, worker, shard_index)
        refilter(job.out, job.min_score, job.keep_top)
        if on_progress:
            on_progress(number + 1, len(todo))
    summary = refilter(job.out, job.min_score, job.keep_top)
    seconds = time.perf_counter() - started
    return {"output": str(job.out), "manifest": str(job.out / "manifest.jsonl"), "generated": made,
            "seconds": round(seconds, 1), **summary}  # fmt: skip
