"""OpenPose-style JSON, as written by OpenPose, DWPose and ComfyUI, in and out.

Import accepts a folder of per-frame files (``*_keypoints.json``), one frame's JSON,
or one JSON list of frames (ComfyUI's POSE_KEYPOINT). Bodies of 18 (COCO-18) or 25
(BODY_25) points become COCO-17; coordinates normalised to [0, 1] (some ComfyUI nodes)
are scaled by the canvas size. Export writes 18-point bodies (with the neck), in a
folder (one file per frame) or, for a ``.json`` path, one ComfyUI-style list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from charanim.errors import InputFileError
from charanim.io.atomic import write_text_atomic
from charanim.pose.formats import coco_to_openpose, openpose_to_coco
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader, Person

#: BODY_25 -> OpenPose-18 (drops the mid-hip and the feet)
_BODY25_TO_18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


def load_openpose(path: str | os.PathLike[str], fps: float = 25.0) -> KeypointSequence:
    source = Path(path)
    if source.is_dir():
        files = sorted(source.glob("*.json"))
        if not files:
            raise InputFileError(f"Folder '{source}' holds no OpenPose JSON files.")
        frames = [_read_json(f) for f in files]
    elif source.is_file():
        data = _read_json(source)
        frames = data if isinstance(data, list) else [data]
    else:
        raise InputFileError(f"OpenPose keypoints '{source}' do not exist.")
    width = int(frames[0].get("canvas_width", 0) or 0)
    height = int(frames[0].get("canvas_height", 0) or 0)
    people = [[_person(p, width, height, source) for p in frame.get("people", [])] for frame in frames]
    if not width or not height:  # no canvas: the extent of the points is the best guess
        points = np.concatenate(
            [p.body[p.body[:, 2] > 0, :2] for frame in people for p in frame] or [np.ones((1, 2))]
        )
        width, height = (int(np.ceil(v)) + 1 for v in points.max(0))
    header = KeypointsHeader(
        width=width, height=height, fps=fps, estimator="openpose-json", source=str(source)
    )
    return KeypointSequence(header, people)


def save_openpose(sequence: KeypointSequence, path: str | os.PathLike[str]) -> Path:
    if sequence.header.body_format != "coco17":
        raise InputFileError("Only human (COCO-17) keypoints can be written as OpenPose JSON.")
    target = Path(path)
    frames = [
        {
            "version": 1.3,
            "canvas_width": sequence.header.width,
            "canvas_height": sequence.header.height,
            "people": [_person_json(p) for p in people],
        }
        for people in sequence.frames
    ]
    if target.suffix.lower() == ".json":
        write_text_atomic(target, json.dumps(frames))
        return target
    target.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_text_atomic(target / f"frame_{index:012d}_keypoints.json", json.dumps(frame))
    return target


def _read_json(file: Path):
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(f"'{file}' is not readable OpenPose JSON ({exc}).") from None


def _person(data: dict, width: int, height: int, source: Path) -> Person:
    body = np.asarray(data.get("pose_keypoints_2d", []), np.float32).reshape(-1, 3)
    if len(body) == 25:
        body = body[_BODY25_TO_18]
    if len(body) != 18:
        raise InputFileError(f"'{source}': expected 18 or 25 body points per person, found {len(body)}.")
    hands = None
    if data.get("hand_left_keypoints_2d") and data.get("hand_right_keypoints_2d"):
        hands = np.stack(
            [
                np.asarray(data[k], np.float32).reshape(21, 3)
                for k in ("hand_left_keypoints_2d", "hand_right_keypoints_2d")
            ]
        )
    face = (
        np.asarray(data["face_keypoints_2d"], np.float32).reshape(-1, 3)
        if data.get("face_keypoints_2d")
        else None
    )
    scale = None
    if width and height and 0 < body[body[:, 2] > 0, :2].max(initial=0) <= 1.0:
        scale = np.array([width, height, 1.0], np.float32)  # normalised coordinates
    if scale is not None:
        body = body * scale
        hands = None if hands is None else hands * scale
        face = None if face is None else face * scale
    return Person(openpose_to_coco(body), hands, face)


def _person_json(person: Person) -> dict:
    body = coco_to_openpose(person.body)
    data = {"pose_keypoints_2d": np.round(body.astype(np.float64), 2).ravel().tolist()}
    if person.hands is not None:
        data["hand_left_keypoints_2d"] = np.round(person.hands[0].astype(np.float64), 2).ravel().tolist()
        data["hand_right_keypoints_2d"] = np.round(person.hands[1].astype(np.float64), 2).ravel().tolist()
    if person.face is not None:
        data["face_keypoints_2d"] = np.round(person.face.astype(np.float64), 2).ravel().tolist()
    return data
