"""Keypoint sequences and their files.

A sequence has a header (source size, fps, estimator, body format) and, per frame, a
list of people. A person's ``body`` is ``[K, 3]``: x, y in pixels of the source and a
confidence in [0, 1]; confidence 0 means the point is missing (never invented).
Optional ``hands`` is ``[2, 21, 3]`` (left, right) and ``face`` ``[N, 3]``.

Files are JSON lines (``.jsonl``: a header line, then one line per frame; easy to read,
diff and edit) or ``.npz`` (dense arrays of the first person per frame, for training).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from charanim.errors import InputFileError, UnsupportedFormatError
from charanim.io.atomic import atomic_output, write_text_atomic
from charanim.pose.formats import get_format

FILE_FORMAT = "charanim-keypoints"
FILE_VERSION = 1


@dataclass
class Person:
    body: np.ndarray
    hands: np.ndarray | None = None
    face: np.ndarray | None = None
    #: overrides the header's body format (several body plans in one video)
    body_format: str | None = None

    def visible(self, threshold: float = 0.3) -> np.ndarray:
        return self.body[:, 2] >= threshold


@dataclass
class KeypointsHeader:
    width: int
    height: int
    fps: float
    body_format: str = "coco17"
    face_format: str | None = None
    estimator: str = "unknown"
    estimator_version: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class KeypointSequence:
    header: KeypointsHeader
    frames: list[list[Person]]

    def __len__(self) -> int:
        return len(self.frames)

    def body_array(self, person: int = 0) -> np.ndarray:
        """``[F, K, 3]`` of one person; frames where they are absent have confidence 0."""
        count = len(get_format(self.header.body_format))
        out = np.zeros((len(self.frames), count, 3), np.float32)
        for i, people in enumerate(self.frames):
            if person < len(people):
                out[i] = people[person].body
        return out

    @classmethod
    def from_body_array(cls, header: KeypointsHeader, body: np.ndarray) -> KeypointSequence:
        """One person per frame from ``[F, K, 3]``; frames with no confident point hold nobody."""
        frames = [[Person(points.astype(np.float32))] if (points[:, 2] > 0).any() else [] for points in body]
        return cls(header, frames)

    @classmethod
    def from_people_array(cls, header: KeypointsHeader, people: np.ndarray) -> KeypointSequence:
        """Several people per frame from ``[P, F, K, 3]``; a person with no confident point in
        a frame is absent from it."""
        frames = [
            [Person(person[i].astype(np.float32)) for person in people if (person[i, :, 2] > 0).any()]
            for i in range(people.shape[1])
        ]
        return cls(header, frames)

    def frames_with_person(self) -> int:
        return sum(1 for people in self.frames if people)

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".jsonl":
            write_text_atomic(target, "\n".join(self._jsonl_lines()) + "\n")
        elif suffix == ".npz":
            with atomic_output(target) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez_compressed(
                        handle, body=self.body_array(), header=json.dumps(_header_json(self.header))
                    )
        else:
            raise UnsupportedFormatError(f"Keypoint files are .jsonl or .npz, not '{target.suffix}'.")
        return target

    def _jsonl_lines(self):
        yield json.dumps(_header_json(self.header))
        for index, people in enumerate(self.frames):
            record = {
                "frame": index,
                "time": round(index / self.header.fps, 4),
                "people": [_person_json(p) for p in people],
            }
            yield json.dumps(record, separators=(",", ":"))


def load_keypoints(path: str | os.PathLike[str]) -> KeypointSequence:
    """Read a ``.jsonl`` or ``.npz`` keypoint file written by ``save`` (or by hand)."""
    source = Path(path)
    if not source.is_file():
        raise InputFileError(f"Keypoint file '{source}' does not exist.")
    if source.suffix.lower() == ".npz":
        return _load_npz(source)
    if source.suffix.lower() != ".jsonl":
        raise UnsupportedFormatError(
            f"'{source.name}' is not a keypoint file (.jsonl or .npz); OpenPose JSON folders are imported with charanim.pose.openpose."
        )
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        header = _parse_header(json.loads(lines[0]) if lines else {}, source)
        frames = []
        for number, line in enumerate(lines[1:], start=2):
            record = json.loads(line)
            frames.append([_parse_person(p, header, source, number) for p in record.get("people", [])])
    except json.JSONDecodeError as exc:
        raise InputFileError(f"'{source}' is not valid JSON lines ({exc.msg}).") from None
    return KeypointSequence(header, frames)


def _header_json(header: KeypointsHeader) -> dict:
    return {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "width": header.width,
        "height": header.height,
        "fps": header.fps,
        "body_format": header.body_format,
        "face_format": header.face_format,
        "estimator": header.estimator,
        "estimator_version": header.estimator_version,
        "source": header.source,
        **({"extra": header.extra} if header.extra else {}),
    }


def _parse_header(data: dict, source: Path) -> KeypointsHeader:
    if data.get("format") != FILE_FORMAT:
        raise InputFileError(
            f"'{source}' is not a charanim keypoint file (its first line is not the header)."
        )
    if int(data.get("version", 0)) > FILE_VERSION:
        raise InputFileError(
            f"'{source}' is keypoint format version {data['version']}; upgrade charanim to read it."
        )
    try:
        header = KeypointsHeader(
            width=int(data["width"]),
            height=int(data["height"]),
            fps=float(data["fps"]),
            body_format=data.get("body_format", "coco17"),
            face_format=data.get("face_format"),
            estimator=data.get("estimator", "unknown"),
            estimator_version=data.get("estimator_version", ""),
            source=data.get("source", ""),
            extra=data.get("extra", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(f"'{source}' has an incomplete header ({exc}).") from None
    get_format(header.body_format)
    return header


def _person_json(person: Person) -> dict:
    data = {"body": np.round(person.body.astype(np.float64), 2).tolist()}
    if person.body_format:
        data["body_format"] = person.body_format
    if person.hands is not None:
        data["hands"] = np.round(person.hands.astype(np.float64), 2).tolist()
    if person.face is not None:
        data["face"] = np.round(person.face.astype(np.float64), 2).tolist()
    return data


def _parse_person(data: dict, header: KeypointsHeader, source: Path, line: int) -> Person:
    body_format = data.get("body_format") or header.body_format
    body = np.asarray(data.get("body", []), dtype=np.float32)
    expected = len(get_format(body_format))
    if body.shape != (expected, 3):
        raise InputFileError(f"'{source}' line {line}: body must be {expected} points of [x, y, confidence].")
    hands = np.asarray(data["hands"], dtype=np.float32) if "hands" in data else None
    if hands is not None and hands.shape != (2, 21, 3):
        raise InputFileError(f"'{source}' line {line}: hands must be [2, 21, 3].")
    face = np.asarray(data["face"], dtype=np.float32) if "face" in data else None
    return Person(body, hands, face, data.get("body_format"))


def _load_npz(source: Path) -> KeypointSequence:
    try:
        with np.load(source, allow_pickle=False) as data:
            header = _parse_header(json.loads(str(data["header"])), source)
            body = data["body"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputFileError(f"'{source}' is not a readable keypoint .npz ({exc}).") from None
    return KeypointSequence.from_body_array(header, body)
