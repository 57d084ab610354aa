"""Benchmark cases: what each contender animates, with the truth where there is one.

Suites: ``world`` (held-out procedural pairs with true targets, grouped by body plan;
made with a seed the training world does not use), ``speed`` (fixed sizes and
lengths), and user suites from a YAML file listing reference / driving / optional
target and keypoint files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from charanim.errors import CharanimError, InputFileError
from charanim.manifest import read_manifest
from charanim.metrics import background_colour, background_plate, mask_iou
from charanim.pose.formats import get_format
from charanim.pose.keypoints import KeypointSequence

BENCH_WORLD_SEED = 1000  # the shipped model trains on seed 0: these characters and motions are new

#: motion amount below which a case is ``small``, then ``medium``, else ``large``: where the
#: reference already stands almost as the target does, a still image is hard to beat
MOTION_BANDS = ((0.15, "small"), (0.35, "medium"), (float("inf"), "large"))


@dataclass
class BenchCase:
    id: str
    suite: str
    group: str
    fps: float
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None
    driving: np.ndarray | None = None
    driving_keypoints: KeypointSequence | None = None
    reference_keypoints: KeypointSequence | None = None
    target: np.ndarray | None = None
    target_mask: np.ndarray | None = None
    target_keypoints: np.ndarray | None = None
    motion: str = ""
    #: why the case could not be loaded (recorded in the report; the run goes on)
    error: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.reference.shape[1], self.reference.shape[0]

    def with_target_skeleton(self) -> BenchCase:
        """The case driven by the target's own true skeleton (an oracle no real run has:
        every limb where the target has it, no retargeting)."""
        if self.target_keypoints is None or self.reference_keypoints is None:
            raise CharanimError(f"Case '{self.id}' has no true target skeleton to drive with.")
        header = replace(self.reference_keypoints.header, fps=self.fps)
        count = self.reference_keypoints.body_array().shape[1]
        truth = np.asarray(self.target_keypoints[:, :count], np.float32)
        return replace(self, driving_keypoints=KeypointSequence.from_body_array(header, truth))

    @cached_property
    def motion_amount(self) -> float | None:
        """How much of the true silhouette the reference's does not already cover:
        1 - IoU of the reference's and the target's character masks, mean over frames."""
        if self.reference_mask is None or self.target_mask is None:
            return None
        if self.reference_mask.shape != self.target_mask.shape[1:]:
            return None
        return 1.0 - float(np.mean([mask_iou(self.reference_mask, m) for m in self.target_mask]))

    @property
    def motion_band(self) -> str | None:
        amount = self.motion_amount
        return None if amount is None else next(name for limit, name in MOTION_BANDS if amount < limit)

    @cached_property
    def background(self) -> np.ndarray:
        """What an output's character is told apart from: the scene's background plate
        where the true frames show it (a still camera, as in the world), else the
        reference's border colour. ``[H, W, 3]`` or ``[3]``."""
        colour = background_colour(self.reference)
        if self.target is None or self.target_mask is None:
            return colour
        views, masks = self.target, self.target_mask
        if self.reference_mask is not None and self.reference_mask.shape == masks.shape[1:]:
            views = np.concatenate([self.reference[None], views])
            masks = np.concatenate([self.reference_mask[None], masks])
        if views.shape[1:3] != self.reference.shape[:2]:
            return colour
        return background_plate(views, masks, colour)


def world_suite(
    report: Path,
    count: int,
    manifest: Path | None = None,
    frames: int = 16,
    size: int = 64,
    reference_pose: str = "other",
) -> list[BenchCase]:
    """Test-split pairs of ``manifest``, or a fresh world made in REPORT/world (cached),
    its references posed as ``reference_pose`` says (:class:`WorldConfig`)."""
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, entry_keypoints, load_shard_sample, run_world

    # checked with --data too, where it is not used
    config = WorldConfig(size=(size, size), frames=frames, cross_plan=0.0, reference_pose=reference_pose)
    if manifest is None:
        run_world(
            WorldJob(
                report / "world",
                count=count,
                seed=BENCH_WORLD_SEED,
                config=config,
                shard_size=25,
                test_fraction=1.0,
            )
        )
        manifest = report / "world" / "manifest.jsonl"
    entries = read_manifest(manifest, "Bench manifest")
    entries = [
        e for e in entries if e.get("split") == "test" and e["driving"]["plan"] == e["reference"]["plan"]
    ][:count]
    cases = []
    for entry in entries:
        try:
            arrays = load_shard_sample(manifest.parent, entry)
        except (OSError, ValueError, KeyError) as exc:
            cases.append(
                BenchCase(
                    entry["id"], "world", entry["reference"]["plan"], entry["fps"], error=f"unreadable: {exc}"
                )
            )
            continue
        fmt = entry["reference"]["keypoint_format"]
        cases.append(BenchCase(
            id=entry["id"], suite="world", group=entry["reference"]["plan"], fps=entry["fps"],
            reference=arrays["reference"], reference_mask=arrays["reference_mask"], driving=arrays["driving"],
            driving_keypoints=entry_keypoints(entry, arrays, "driving"),
            reference_keypoints=entry_keypoints(entry, arrays, "reference"),
            target=arrays["target"], target_mask=arrays["target_mask"], target_keypoints=arrays["target_keypoints"][:, : len(get_format(fmt))],
            motion=entry["motion"]["name"], meta={"prompt": entry["caption"]["prompt"], "framing": entry["reference"]["framing"]},
        ))  # fmt: skip
    if not cases:
        raise CharanimError(f"'{manifest}' has no test-split pairs with one body plan to benchmark.")
    return cases


def speed_suite(sizes: tuple[int, ...] = (64,), lengths: tuple[int, ...] = (8, 32)) -> list[BenchCase]:
    """Fixed sizes and lengths: a synthetic figure, no truth (speed and memory only)."""
    from charanim.testing.media import moving_figure_frames

    cases = []
    for size in sizes:
        for length in lengths:
            frames = moving_figure_frames(length, (size, size), seed=size + length)
            cases.append(
                BenchCase(
                    f"speed-{size}px-{length}f",
                    "speed",
                    f"{size}px",
                    8.0,
                    reference=frames[0],
                    driving=frames,
                )
            )
    return cases


def yaml_suite(path: Path, suite: str = "custom") -> list[BenchCase]:
    """A user suite::

    cases:
      - id: dance-cat
        reference: cat.png
        driving: dance.mp4
        target: cat_dancing.mp4        # optional: enables the metrics that need a truth
        pose: dance.jsonl              # optional keypoints
        reference_pose: cat.jsonl
        group: animals
        fps: 8
    """
    from charanim.io.image import read_image
    from charanim.io.video import read_video
    from charanim.pose.estimate import keypoints_from

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputFileError(f"Suite '{path}' is not readable YAML ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise InputFileError(f"Suite '{path}' must hold a 'cases:' list.")
    root, cases = path.parent, []
    for number, item in enumerate(data["cases"]):
        case_id = str(item.get("id", f"case{number}"))
        fps = float(item.get("fps", 8.0))
        try:
            reference = read_image(root / item["reference"])
            driving = read_video(root / item["driving"], fps=fps, max_side=512)
            target = (
                read_video(root / item["target"], fps=fps, max_side=512).frames
                if item.get("target")
                else None
            )
            cases.append(BenchCase(
                case_id, suite, str(item.get("group", suite)), fps, reference.rgb,
                None if reference.alpha is None else (reference.alpha > 127).astype(np.uint8) * 255, driving.frames,
                keypoints_from(root / item["pose"]) if item.get("pose") else None,
                keypoints_from(root / item["reference_pose"]) if item.get("reference_pose") else None,
                target,
            ))  # fmt: skip
        except (CharanimError, KeyError) as exc:
            cases.append(BenchCase(case_id, suite, str(item.get("group", suite)), fps, error=str(exc)))
    return cases
