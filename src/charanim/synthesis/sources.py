"""Where bootstrap takes its real motions (sources) and its other characters (references).

A source is a clip with its keypoints: a world manifest's target videos, or a folder
of videos (keypoints from a ``<name>.pose.jsonl`` beside each, or the pose estimator).
A reference is an image with its keypoints: a manifest's reference images, or a folder
of images (with ``<name>.pose.jsonl`` or the estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charanim.errors import CharanimError, InputFileError
from charanim.io.image import image_from_array, read_image
from charanim.io.video import read_video
from charanim.pose.formats import get_format
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader, load_keypoints
from charanim.synthetic.world import load_shard_sample

VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".gif", ".avi"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


@dataclass
class Source:
    key: str
    frames: np.ndarray  # uint8 [F, H, W, 3]
    keypoints: KeypointSequence
    fps: float
    mask: np.ndarray | None = None  # [F, H, W] where the character is, when known
    caption: dict | None = None
    plan: str = ""


@dataclass
class ReferenceCharacter:
    key: str
    image: np.ndarray  # uint8 [H, W, 3]
    keypoints: KeypointSequence
    mask: np.ndarray | None = None
    appearance: str = ""
    plan: str = ""


def _manifest_entries(path: Path) -> list[dict]:
    from charanim.manifest import read_manifest

    return read_manifest(path)


def _header(entry: dict, fmt: str) -> KeypointsHeader:
    return KeypointsHeader(entry["width"], entry["height"], entry["fps"], body_format=fmt)


class ManifestSources:
    """Targets (true clips) and references of a world manifest's ``split``."""

    def __init__(self, manifest: Path, split: str = "train"):
        self.root = manifest.parent
        self.entries = [e for e in _manifest_entries(manifest) if e.get("split") == split]
        if not self.entries:
            raise CharanimError(f"'{manifest}' has no samples in split '{split}'.")

    def __len__(self) -> int:
        return len(self.entries)

    def body_format(self, index: int) -> str | None:
        """The character's keypoint format, read from the manifest (no arrays loaded)."""
        return self.entries[index]["reference"]["keypoint_format"]

    def source(self, index: int) -> Source:
        entry = self.entries[index]
        arrays = load_shard_sample(self.root, entry)
        fmt = entry["reference"]["keypoint_format"]
        keypoints = KeypointSequence.from_body_array(
            _header(entry, fmt), arrays["target_keypoints"][:, : len(get_format(fmt))]
        )
        caption = {"motion": entry["caption"]["motion"], "appearance": entry["reference"]["appearance"]}
        return Source(
            entry["id"],
            arrays["target"],
            keypoints,
            entry["fps"],
            arrays["target_mask"],
            caption,
            entry["reference"]["plan"],
        )

    def reference(self, index: int) -> ReferenceCharacter:
        entry = self.entries[index]
        arrays = load_shard_sample(self.root, entry)
        fmt = entry["reference"]["keypoint_format"]
        keypoints = KeypointSequence.from_body_array(
            _header(entry, fmt), arrays["reference_keypoints"][None, : len(get_format(fmt))]
        )
        return ReferenceCharacter(
            entry["id"],
            arrays["reference"],
            keypoints,
            arrays["reference_mask"],
            entry["reference"]["appearance"],
            entry["reference"]["plan"],
        )


class FolderSources:
    """Videos or images in a folder; keypoints from sidecar files or the estimator."""

    def __init__(self, folder: Path, suffixes: set[str], what: str, fps: float = 8.0):
        self.folder = folder
        self.fps = fps
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
        if not self.files:
            raise CharanimError(f"Folder '{folder}' holds no {what}.")

    def __len__(self) -> int:
        return len(self.files)

    def body_format(self, index: int) -> str | None:
        """Unknown until the file's keypoints are read or estimated."""
        return None

    def _keypoints(self, path: Path, frames: np.ndarray, fps: float, size) -> KeypointSequence:
        sidecar = path.with_suffix(".pose.jsonl")
        if sidecar.is_file():
            return load_keypoints(sidecar)
        from charanim.pose.estimate import estimate_sequence, get_estimator

        return estimate_sequence(get_estimator(), frames, fps, size, str(path))

    def source(self, index: int) -> Source:
        path = self.files[index]
        video = read_video(path, fps=self.fps, max_side=512)
        keypoints = self._keypoints(path, video.frames, video.fps, video.size)
        return Source(path.stem, video.frames, keypoints, video.fps)

    def reference(self, index: int) -> ReferenceCharacter:
        path = self.files[index]
        image = read_image(path)
        keypoints = self._keypoints(path, image.rgb[None], 1.0, image.size)
        mask = None if image.alpha is None else (image.alpha > 127).astype(np.uint8) * 255
        return ReferenceCharacter(path.stem, image.rgb, keypoints, mask)


def open_sources(path: Path, kind: str):
    """A manifest or a folder of videos (``kind='driving'``) or images (``kind='references'``)."""
    if not path.exists():
        raise InputFileError(f"--{kind} '{path}' does not exist.")
    if path.is_file():
        return ManifestSources(path)
    if kind == "driving":
        return FolderSources(path, VIDEO_SUFFIXES, "videos")
    return FolderSources(path, IMAGE_SUFFIXES, "images")


__all__ = [
    "ManifestSources",
    "FolderSources",
    "ReferenceCharacter",
    "Source",
    "image_from_array",
    "open_sources",
]
