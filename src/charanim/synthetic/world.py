"""``synthesize world``: many world samples, written as resumable, shardable shards.

Layout of an output folder::

    world.json                 the settings (a rerun with other settings is refused)
    shards/shard-00000.npz     arrays of samples [0, shard_size): videos, masks, keypoints
    shards/shard-00000.jsonl   their manifest entries, written after the .npz: the
                               completion marker of the shard
    manifest.jsonl             the entries of every complete shard, in sample order
    preview.mp4                optional: reference | driving | target, side by side

Every sample is a pure function of (seed, sample index), so shards can be made in any
order, by any number of processes or machines (``shard=(i, n)`` takes every n-th
shard), and a killed run continues where it stopped with identical results.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from charanim import __version__
from charanim.errors import CharanimError, InvalidOptionError
from charanim.io.atomic import atomic_output, write_text_atomic
from charanim.synthetic.samples import WorldConfig, make_duet, make_sample

SHARD_ARRAYS = (
    "driving", "driving_mask", "driving_keypoints", "reference", "reference_mask", "reference_keypoints",
    "target", "target_mask", "target_keypoints",
)  # fmt: skip
#: the other people of duet samples (zeros for solo samples); only in worlds made with duets
OTHER_ARRAYS = ("others_driving_keypoints", "others_reference_keypoints", "others_target_keypoints")
GROUP = 3  # samples per one-to-many group


@dataclass(frozen=True)
class WorldJob:
    out: Path
    count: int
    seed: int = 0
    config: WorldConfig = field(default_factory=WorldConfig)
    shard_size: int = 50
    shard: tuple[int, int] = (0, 1)
    workers: int = 1
    test_fraction: float = 0.05
    one_to_many: float = 0.25

    def settings(self) -> dict:
        """What makes two runs produce the same samples (not count, workers or shard)."""
        config = asdict(self.config)
        for added, default in (("duets", 0.0), ("audio", False), ("reference_pose", "other")):
            if config[added] == default:  # worlds made before these existed keep their settings
                del config[added]
        return {
            "generator": "charanim.synthetic", "version": 1, "seed": self.seed, "shard_size": self.shard_size,
            "test_fraction": self.test_fraction, "one_to_many": self.one_to_many, **config,
        }  # fmt: skip


def _hash(*parts) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_seeds(job: WorldJob, index: int) -> tuple[int, int, str]:
    """(motion seed, target seed, group id). Blocks of ``GROUP`` consecutive samples are
    one-to-many groups (same driving, different targets) with probability ``one_to_many``."""
    block = index // GROUP
    if _hash(job.seed, "group", block) % 1000 < job.one_to_many * 1000:
        return _hash(job.seed, "motion", "block", block), _hash(job.seed, "target", index), f"g{block:06d}"
    return _hash(job.seed, "motion", index), _hash(job.seed, "target", index), f"s{index:07d}"


def is_duet(job: WorldJob, motion_seed: int) -> bool:
    """Decided by the motion seed, so a one-to-many group is all duets or all solos."""
    return job.config.duets > 0 and _hash(job.seed, "duet", motion_seed) % 10000 < job.config.duets * 10000


def split_of(job: WorldJob, group: str) -> str:
    """Stable per group: growing ``count`` never moves a sample to another split."""
    return "test" if _hash(job.seed, "split", group) % 10000 < job.test_fraction * 10000 else "train"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def _render_shard(job: WorldJob, shard_index: int) -> int:
    start = shard_index * job.shard_size
    stop = min(start + job.shard_size, job.count)
    samples, entries = [], []
    for index in range(start, stop):
        motion_seed, target_seed, group = sample_seeds(job, index)
        duet = is_duet(job, motion_seed)
        sample = (make_duet if duet else make_sample)(job.config, motion_seed, target_seed)
        samples.append(sample)
        entries.append({
            "id": f"world-{index:07d}", "index": index, "split": split_of(job, group), "group": group,
            "shard": f"shards/{shard_name(shard_index)}.npz", "position": index - start,
            "frames": job.config.frames, "fps": job.config.fps, "width": job.config.size[0], "height": job.config.size[1],
            **sample.meta,
            "provenance": {"source": "world", "generator": f"charanim {__version__}", "seed": job.seed,
                           "motion_seed": motion_seed, "target_seed": target_seed},
        })  # fmt: skip
    folder = job.out / "shards"
    with atomic_output(folder / f"{shard_name(shard_index)}.npz") as tmp:
        with open(tmp, "wb") as handle:
            arrays = {key: np.stack([getattr(s, key) for s in samples]) for key in SHARD_ARRAYS}
            if job.config.duets > 0:
                arrays.update(_other_arrays(samples, job.config.frames))
            if job.config.audio:
                arrays["driving_audio"] = np.stack([s.driving_audio for s in samples])
            np.savez_compressed(handle, **arrays)
    write_text_atomic(
        folder / f"{shard_name(shard_index)}.jsonl", "".join(json.dumps(e) + "\n" for e in entries)
    )
    return stop - start


def _other_arrays(samples, frames: int) -> dict[str, np.ndarray]:
    """Second-person keypoints of every sample of a shard (zeros where there is none)."""
    from charanim.synthetic.samples import MAX_KEYPOINTS

    shapes = {"driving_keypoints": (1, frames, MAX_KEYPOINTS, 3), "reference_keypoints": (1, MAX_KEYPOINTS, 3),
              "target_keypoints": (1, frames, MAX_KEYPOINTS, 3)}  # fmt: skip
    return {
        f"others_{key}": np.stack(
            [s.others[key] if s.others else np.zeros(shape, np.float32) for s in samples]
        )
        for key, shape in shapes.items()
    }


def _complete_shards(job: WorldJob) -> set[int]:
    folder = job.out / "shards"
    done = set()
    for fragment in folder.glob("shard-*.jsonl"):
        index = int(fragment.stem.split("-")[1])
        if (folder / f"{shard_name(index)}.npz").is_file():
            done.add(index)
    return done


def write_manifest(out: Path) -> int:
    """Rewrite ``manifest.jsonl`` from the complete shards present; returns the sample count."""
    folder = out / "shards"
    lines = []
    for fragment in sorted(folder.glob("shard-*.jsonl")):
        if (folder / f"{fragment.stem}.npz").is_file():
            lines.extend(line for line in fragment.read_text().splitlines() if line.strip())
    lines.sort(key=lambda line: json.loads(line)["index"])
    write_text_atomic(out / "manifest.jsonl", "".join(line + "\n" for line in lines))
    return len(lines)


def _prepare_folder(job: WorldJob, overwrite: bool) -> None:
    if job.out.exists() and not job.out.is_dir():
        raise CharanimError(f"Output '{job.out}' is a file, not a folder.")
    (job.out / "shards").mkdir(parents=True, exist_ok=True)
    if not os.access(job.out, os.W_OK):
        raise CharanimError(f"Output folder '{job.out}' is not writable.")
    settings_file = job.out / "world.json"
    settings = job.settings()
    if settings_file.is_file() and not overwrite:
        existing = json.loads(settings_file.read_text())
        if existing != json.loads(json.dumps(settings)):
            changed = sorted(
                k
                for k in set(existing) | set(settings)
                if existing.get(k) != json.loads(json.dumps(settings)).get(k)
            )
            raise CharanimError(
                f"'{job.out}' holds a world made with other settings ({', '.join(changed)}); "
                "use a new folder, the same settings to continue it, or --overwrite."
            )
    if overwrite:
        for old in (job.out / "shards").glob("shard-*"):
            old.unlink()
    write_text_atomic(settings_file, json.dumps(settings, indent=2) + "\n")


def run_world(
    job: WorldJob, overwrite: bool = False, on_progress: Callable[[int, int], None] | None = None
) -> dict:
    """Generate (or continue) a world; returns a summary for ``--json``."""
    if job.count < 1:
        raise InvalidOptionError("--count must be at least 1.")
    part, parts = job.shard
    if not 0 <= part < parts:
        raise InvalidOptionError(f"--shard {part}/{parts} is not valid: use i/n with 0 <= i < n.")
    _prepare_folder(job, overwrite)
    total_shards = (job.count + job.shard_size - 1) // job.shard_size
    mine = [i for i in range(total_shards) if i % parts == part]
    done = _complete_shards(job)
    todo = [i for i in mine if i not in done]
    sizes = {i: min(job.shard_size, job.count - i * job.shard_size) for i in mine}
    completed = sum(sizes[i] for i in mine if i in done)
    if on_progress:
        on_progress(completed, sum(sizes.values()))
    started = time.perf_counter()
    generated = 0
    if job.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=job.workers) as pool:
            for count in pool.map(_render_shard, [job] * len(todo), todo):
                generated += count
                write_manifest(job.out)
                if on_progress:
                    on_progress(completed + generated, sum(sizes.values()))
    else:
        for index in todo:
            generated += _render_shard(job, index)
            write_manifest(job.out)
            if on_progress:
                on_progress(completed + generated, sum(sizes.values()))
    seconds = time.perf_counter() - started
    total = write_manifest(job.out)
    splits: dict[str, int] = {}
    for line in (job.out / "manifest.jsonl").read_text().splitlines():
        split = json.loads(line)["split"]
        splits[split] = splits.get(split, 0) + 1
    return {
        "output": str(job.out), "manifest": str(job.out / "manifest.jsonl"), "samples": total,
        "generated": generated, "resumed_from": completed, "shards": len(_complete_shards(job)),
        "seconds": round(seconds, 2), "samples_per_second": round(generated / seconds, 2) if generated else None,
        "splits": splits, "shard": f"{part}/{parts}",
    }  # fmt: skip


def load_shard_sample(root: Path, entry: dict) -> dict[str, np.ndarray]:
    """The arrays of one manifest entry (the whole shard is read; cache it for training)."""
    with np.load(root / entry["shard"], allow_pickle=False) as data:
        keys = [*SHARD_ARRAYS, *(k for k in (*OTHER_ARRAYS, "driving_audio") if k in data.files)]
        return {key: data[key][entry["position"]] for key in keys}


def entry_keypoints(entry: dict, arrays: dict[str, np.ndarray], which: str, window: slice | None = None):
    """A sample's ``driving``, ``reference`` or ``target`` keypoints as a sequence: one
    person, or every person of a duet (same body format)."""
    from charanim.pose.formats import get_format
    from charanim.pose.keypoints import KeypointSequence, KeypointsHeader

    side = "driving" if which == "driving" else "reference"
    fmt = entry[side]["keypoint_format"]
    header = KeypointsHeader(entry["width"], entry["height"], entry["fps"], body_format=fmt)
    count = len(get_format(fmt))
    points = arrays[f"{which}_keypoints"]
    people = points[None] if which != "reference" else points[None, None]
    if entry.get("people", 1) > 1 and f"others_{which}_keypoints" in arrays:
        others = arrays[f"others_{which}_keypoints"]
        people = np.concatenate([people, others if which != "reference" else others[:, None]])
    people = people[..., :count, :]
    if window is not None and which != "reference":
        people = people[:, window]
    return KeypointSequence.from_people_array(header, people)


def write_preview(root: Path, count: int, fps: float) -> Path:
    """reference | driving | target of the first ``count`` samples, one after another."""
    from charanim.io.video import write_video

    entries = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()[:count]]
    clips, sounds = [], []
    for entry in entries:
        arrays = load_shard_sample(root, entry)
        reference = np.repeat(arrays["reference"][None], len(arrays["driving"]), axis=0)
        clips.append(np.concatenate([reference, arrays["driving"], arrays["target"]], axis=2))
        sounds.append(arrays.get("driving_audio"))
    frames = np.concatenate(clips)
    scale = max(1, 256 // frames.shape[1])
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    preview = write_video(root / "preview.mp4", frames, fps)
    if sounds and all(sound is not None for sound in sounds):  # hear the talkers too
        import tempfile

        from charanim.io.audio import add_audio, write_wav
        from charanim.synthetic.voice import SAMPLE_RATE, to_float

        with tempfile.TemporaryDirectory() as tmp:
            wav = write_wav(Path(tmp) / "preview.wav", to_float(np.concatenate(sounds)), SAMPLE_RATE)
            add_audio(preview, wav, preview)
    return preview
