"""Training data from a manifest: world shards with true cross-identity pairs.

Batches are a pure function of (seed, step): the order is a per-epoch permutation of
the samples, and every random choice for a sample (temporal crop, augmentation) comes
from a generator seeded by (seed, step, slot). A resumed run therefore sees exactly
the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from charanim.errors import CharanimError, InputFileError
from charanim.manifest import read_manifest
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
from charanim.synthetic.world import OTHER_ARRAYS, SHARD_ARRAYS, entry_keypoints
from charanim.training.recipe import DataSpec


@dataclass
class TrainSample:
    """One training example, cropped to the model's frame count (uint8 pixels)."""

    reference: np.ndarray  # [H, W, 3]
    driving: np.ndarray  # [F, H, W, 3]
    target: np.ndarray  # [F, H, W, 3]
    target_mask: np.ndarray  # [F, H, W]
    driving_keypoints: KeypointSequence
    target_keypoints: KeypointSequence
    reference_keypoints: KeypointSequence
    prompt: str
    entry: dict
    #: where the crop starts, and the whole target clip (latents of a per-frame autoencoder
    #: are cached per clip and sliced)
    start: int = 0
    target_clip: np.ndarray | None = None
    #: the driving crop's sound (``synthesize world --audio``), as an in-memory Audio
    driving_audio: object | None = None
    #: the driving frames and both sides' keypoints from the clip's first frame to the
    #: crop's end (``start + F`` frames). The reference stands where the clip starts, and
    #: the pose conditioner's retargeting anchors the motion at the first frame it is
    #: given: handed the crop alone it would put the crop's first pose where the
    #: reference stands, off by however far the character had travelled.
    driving_from_start: np.ndarray | None = None
    driving_keypoints_from_start: KeypointSequence | None = None
    target_keypoints_from_start: KeypointSequence | None = None
    #: which of the recipe's manifests it comes from: each keeps its clips' latents beside
    #: it, and ids repeat across worlds (every ``synthesize world`` counts from 0)
    source: int = 0


class ManifestData:
    """The entries of a manifest that a recipe selects, with their shards cached in memory."""

    def __init__(self, spec: DataSpec, frames: int, root: Path | None = None):
        path = Path(spec.manifest)
        if not spec.manifest:
            raise InputFileError(
                "The recipe names no data.manifest (make one with 'charanim synthesize world')."
            )
        if not path.exists():
            raise InputFileError(
                f"Training manifest '{spec.manifest}' does not exist (make one with 'charanim synthesize world')."
            )
        self.root = root or path.parent
        self.spec = spec
        self.frames = frames
        entries = read_manifest(path, "Training manifest")
        for number, entry in enumerate(entries, start=1):
            self._check_inside(entry, path, number)
        self.entries = [e for e in entries if self._selected(e)]
        if not self.entries:
            raise CharanimError(
                f"No samples in '{path}' match split '{spec.split}' and the recipe's filters."
            )
        too_short = [e["id"] for e in self.entries if e["frames"] < frames]
        if too_short:
            raise CharanimError(
                f"{len(too_short)} samples have fewer than the model's {frames} frames (e.g. {too_short[0]})."
            )
        self._shards: dict[str, dict[str, np.ndarray]] = {}

    def _check_inside(self, entry: dict, path: Path, number: int) -> None:
        shard = entry.get("shard")
        if not isinstance(shard, str):
            raise InputFileError(f"'{path}' entry {number} has no shard file.")
        resolved = (self.root / shard).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise InputFileError(
                f"'{path}' entry {number}: '{shard}' points outside the manifest's folder; refused."
            )

    def _selected(self, entry: dict) -> bool:
        spec = self.spec
        if entry.get("split") != spec.split:
            return False
        plans = {entry["driving"]["plan"], entry["reference"]["plan"]}
        if spec.same_plan and len(plans) > 1:
            return False
        return not spec.body_plans or plans <= set(spec.body_plans)

    def __len__(self) -> int:
        return len(self.entries)

    def _arrays(self, entry: dict) -> dict[str, np.ndarray]:
        shard = entry["shard"]
        if shard not in self._shards:
            try:
                with np.load(self.root / shard, allow_pickle=False) as data:
                    keys = [*SHARD_ARRAYS, *(k for k in (*OTHER_ARRAYS, "driving_audio") if k in data.files)]
                    self._shards[shard] = {key: data[key] for key in keys}
            except (OSError, ValueError, KeyError) as exc:
                raise InputFileError(f"Shard '{self.root / shard}' is unreadable ({exc}).") from None
        return {key: value[entry["position"]] for key, value in self._shards[shard].items()}

    def sample(self, index: int, rng: np.random.Generator) -> TrainSample:
        entry = self.entries[index]
        arrays = self._arrays(entry)
        start = int(rng.integers(0, entry["frames"] - self.frames + 1))
        window = slice(start, start + self.frames)

        # pairs "self": the target drives itself, like training on ordinary videos
        driving_side = "target" if self.spec.pairs == "self" else "driving"
        driving = arrays[driving_side]
        driving_keypoints = entry_keypoints(entry, arrays, driving_side, window)
        from_start = slice(0, window.stop)
        return TrainSample(
            reference=arrays["reference"],
            driving=driving[window],
            target=arrays["target"][window],
            target_mask=arrays["target_mask"][window],
            driving_keypoints=driving_keypoints,
            target_keypoints=entry_keypoints(entry, arrays, "target", window),
            reference_keypoints=entry_keypoints(entry, arrays, "reference"),
            prompt=entry.get("caption", {}).get("prompt", ""),
            entry=entry,
            start=start,
            target_clip=arrays["target"],
            driving_audio=_audio_crop(arrays.get("driving_audio"), entry, window),
            driving_from_start=driving[from_start],
            driving_keypoints_from_start=entry_keypoints(entry, arrays, driving_side, from_start),
            target_keypoints_from_start=entry_keypoints(entry, arrays, "target", from_start),
        )


def _audio_crop(samples: np.ndarray | None, entry: dict, window: slice):
    """The sound of the frames in ``window`` (int16 at the sample rate the entry records)."""
    if samples is None:
        return None
    from charanim.io.audio import Audio
    from charanim.synthetic.voice import to_float

    rate = int(entry.get("audio", {}).get("sample_rate", 16000))
    per_frame = rate / entry["fps"]
    part = samples[int(round(window.start * per_frame)) : int(round(window.stop * per_frame))]
    return Audio(to_float(part), rate)


def batch_indices(count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Sample indices of batch ``step``: consecutive slices of per-epoch permutations."""
    indices = []
    position = step * batch_size
    while len(indices) < batch_size:
        epoch, offset = divmod(position, count)
        order = np.random.default_rng([seed, epoch]).permutation(count)
        take = min(batch_size - len(indices), count - offset)
        indices.extend(order[offset : offset + take].tolist())
        position += take
    return indices


#: what a generator is for, so streams for data, augmentation and noise never coincide
DATA, AUGMENT, NOISE = 0, 1, 2


def sample_rng(seed: int, step: int, slot: int, purpose: int = DATA) -> np.random.Generator:
    return np.random.default_rng([seed, step, slot, purpose])


class ImageFolderData:
    """Few-shot personalisation: every ordered pair of a character's images is a one-frame
    training sample (reference = one image, target = another, driven by its skeleton)."""

    def __init__(self, spec: DataSpec, frames: int, size: tuple[int, int]):
        from charanim.io.image import read_image
        from charanim.io.resize import fit_frames, fit_transform
        from charanim.pose.estimate import estimate_sequence, get_estimator, keypoints_from

        folder = Path(spec.images)
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
            if folder.is_dir()
            else []
        )
        if len(files) < 5:
            raise CharanimError(
                f"Few-shot personalisation needs at least 5 images in '{folder}' (found {len(files)})."
            )
        if frames != 1:
            raise CharanimError("Image-folder training makes one-frame samples: set model.frames: 1.")
        self.images, self.keypoints, self.frames = [], [], 1
        for file in files:
            image = read_image(file)
            sidecar = file.with_suffix(".pose.jsonl")
            points = (
                keypoints_from(sidecar)
                if sidecar.is_file()
                else estimate_sequence(get_estimator(), image.rgb[None], 1.0, image.size, str(file))
            )
            if points.frames_with_person() == 0:
                raise CharanimError(f"No skeleton for '{file}': add {sidecar.name} beside it.")
            fitted, _ = fit_frames(image.rgb[None], size, "contain")
            transform = fit_transform(image.size, size, "contain")
            body = points.body_array()[:1].copy()
            body[..., :2] = transform.apply(body[..., :2])
            header = KeypointsHeader(size[0], size[1], 1.0, body_format=points.header.body_format)
            self.images.append(fitted[0])
            self.keypoints.append(KeypointSequence.from_body_array(header, body))
        self.pairs = [(i, j) for i in range(len(files)) for j in range(len(files)) if i != j]
        self.entries = [{"id": f"pair-{i}-{j}"} for i, j in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, index: int, rng: np.random.Generator) -> TrainSample:
        i, j = self.pairs[index]
        target = self.images[j][None]
        return TrainSample(
            reference=self.images[i], driving=target, target=target, target_mask=np.zeros(target.shape[:3], np.uint8),
            driving_keypoints=self.keypoints[j], target_keypoints=self.keypoints[j], reference_keypoints=self.keypoints[i],
            prompt="", entry=self.entries[index], start=0, target_clip=target,
        )  # fmt: skip


class JoinedData:
    """Several manifests' selected entries as one set (``data.manifest=[a.jsonl,b.jsonl]``),
    in the order listed; each sample says which manifest it came from (``source``)."""

    def __init__(self, parts: list[ManifestData]):
        self.parts = parts
        self.entries = [entry for part in parts for entry in part.entries]
        self._starts = np.cumsum([0, *(len(part) for part in parts)])

    def __len__(self) -> int:
        return len(self.entries)

    def sample(self, index: int, rng: np.random.Generator) -> TrainSample:
        source = int(np.searchsorted(self._starts, index, side="right")) - 1
        sample = self.parts[source].sample(index - int(self._starts[source]), rng)
        sample.source = source
        return sample


def open_manifests(spec: DataSpec, frames: int) -> ManifestData | JoinedData:
    """The recipe's manifest, or its list of manifests joined (each read as
    :class:`ManifestData` reads one)."""
    manifests = spec.manifests
    if len(manifests) <= 1:
        return ManifestData(replace(spec, manifest=manifests[0] if manifests else ""), frames)
    return JoinedData([ManifestData(replace(spec, manifest=manifest), frames) for manifest in manifests])


def open_data(spec: DataSpec, frames: int, size: tuple[int, int]):
    return ImageFolderData(spec, frames, size) if spec.images else open_manifests(spec, frames)
