"""The built-in captioner: no model, only measurements (``motion.py``, ``appearance.py``)
and a fixed fusion template. With no person found it falls back to the image's global
motion and says so."""

from __future__ import annotations

import numpy as np

from charanim.captioning.appearance import read_appearance
from charanim.captioning.base import Captioner
from charanim.captioning.motion import read_generic_motion, read_human_motion
from charanim.pose.keypoints import KeypointSequence


def global_motion(frames: np.ndarray) -> tuple[str, dict]:
    """Where the changing pixels go, when there is no skeleton to read."""
    if frames is None or len(frames) < 2:
        return "does not move", {"reason": "a single frame"}
    gray = frames.astype(np.float32).mean(-1)
    change = np.abs(np.diff(gray, axis=0))
    energy = float(change.mean())
    if energy < 1.0:
        return "stays still", {"change": round(energy, 3)}
    xs = np.arange(gray.shape[2])
    weights = change.sum(1)
    centres = (weights * xs).sum(1) / np.maximum(weights.sum(1), 1e-6)
    drift = float((centres[-1] - centres[0]) / gray.shape[2])
    where = "to the right" if drift > 0.1 else "to the left" if drift < -0.1 else "in place"
    return f"moves {where}", {"change": round(energy, 3), "drift": round(drift, 3)}


class HeuristicCaptioner(Captioner):
    name = "heuristic"
    description = "measures motion from keypoints and appearance from pixels; no model"

    def describe_motion(self, frames, keypoints: KeypointSequence | None, fps: float):
        if keypoints is None or keypoints.frames_with_person() == 0:
            text, details = global_motion(frames)
            return text, {"label": "none", "skeleton": False, **details}
        fmt = keypoints.header.body_format
        points = keypoints.body_array()
        reading = read_human_motion(points, fps) if fmt == "coco17" else read_generic_motion(points, fmt, fps)
        if reading.label == "none":
            text, details = global_motion(frames)
            return text, {
                "label": "none",
                "skeleton": True,
                "reason": reading.measures.get("reason"),
                **details,
            }
        return reading.text, {
            "label": reading.label,
            "side": reading.side,
            "skeleton": True,
            **reading.measures,
        }

    def describe_appearance(self, image, alpha, keypoints: KeypointSequence | None):
        fmt = (
            keypoints.header.body_format if keypoints is not None and keypoints.frames_with_person() else None
        )
        return read_appearance(image, alpha, fmt)
