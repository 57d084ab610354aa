"""Captioning one driving video (and reference), or a whole manifest, resumably."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from charanim.captioning.base import Caption, Captioner
from charanim.errors import CharanimError
from charanim.io.atomic import write_text_atomic
from charanim.pose.keypoints import KeypointSequence


def get_captioner(name: str = "heuristic", **options) -> Captioner:
    from charanim.plugins import get_plugins

    cls = get_plugins().captioners.get(name)
    import inspect

    accepted = {
        k: v for k, v in options.items() if k in inspect.signature(cls.__init__).parameters and v is not None
    }
    return cls(**accepted)


def caption(
    captioner: Captioner,
    frames: np.ndarray | None,
    keypoints: KeypointSequence | None,
    fps: float,
    reference: np.ndarray | None = None,
    reference_alpha: np.ndarray | None = None,
    reference_keypoints: KeypointSequence | None = None,
    motion: str | None = None,
    appearance: str | None = None,
) -> Caption:
    """Describe what is not given (``motion``/``appearance`` override), then fuse."""
    details: dict = {}
    if motion is None:
        motion, details["motion"] = captioner.describe_motion(frames, keypoints, fps)
    if appearance is None:
        if reference is None:
            appearance = "the character"
        else:
            appearance, details["appearance"] = captioner.describe_appearance(
                reference, reference_alpha, reference_keypoints
            )
    return Caption(motion, appearance, captioner.fuse(motion, appearance), captioner.name, details)


def caption_manifest(captioner: Captioner, manifest: Path, out: Path, on_progress=None) -> dict:
    """Caption every entry of a (world or bootstrap) manifest into ``out`` (JSON lines).
    Entries already in ``out`` are kept: a killed run continues where it stopped."""
    from charanim.manifest import read_manifest
    from charanim.pose.formats import get_format
    from charanim.pose.keypoints import KeypointsHeader
    from charanim.synthetic.world import load_shard_sample

    entries = read_manifest(manifest)
    if not entries:
        raise CharanimError(f"Manifest '{manifest}' is empty.")
    done: dict[str, dict] = {}
    if out.is_file():
        for line in out.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["id"]] = record
    agree = {"motion": [], "colour": []}
    for number, entry in enumerate(entries):
        if entry["id"] not in done:
            arrays = load_shard_sample(manifest.parent, entry)
            fmt = entry["driving"]["keypoint_format"]
            header = KeypointsHeader(entry["width"], entry["height"], entry["fps"], body_format=fmt)
            keypoints = KeypointSequence.from_body_array(
                header, arrays["driving_keypoints"][:, : len(get_format(fmt))]
            )
            ref_fmt = entry["reference"]["keypoint_format"]
            ref_header = KeypointsHeader(entry["width"], entry["height"], entry["fps"], body_format=ref_fmt)
            ref_points = KeypointSequence.from_body_array(
                ref_header, arrays["reference_keypoints"][None, : len(get_format(ref_fmt))]
            )
            result = caption(
                captioner,
                arrays["driving"],
                keypoints,
                entry["fps"],
                arrays["reference"],
                arrays["reference_mask"],
                ref_points,
            )
            done[entry["id"]] = {"id": entry["id"], **result.as_dict()}
            if number % 50 == 0 or number == len(entries) - 1:
                _write(out, entries, done)
        truth = entry.get("motion", {})
        label = done[entry["id"]]["details"].get("motion", {}).get("label")
        if truth.get("name") and entry["driving"]["keypoint_format"] == "coco17" and label:
            agree["motion"].append(label == truth["name"])
        colours = done[entry["id"]]["details"].get("appearance", {}).get("colours") or []
        truth_colour = _first_colour(entry.get("reference", {}).get("appearance", ""))
        if colours and truth_colour:  # is the true body colour among the (up to two) named ones?
            agree["colour"].append(truth_colour in [name for name, _ in colours])
        if on_progress:
            on_progress(number + 1, len(entries))
    _write(out, entries, done)
    return {
        "output": str(out), "captioned": len(done),
        "motion_label_agreement": round(float(np.mean(agree["motion"])), 3) if agree["motion"] else None,
        "main_colour_agreement": round(float(np.mean(agree["colour"])), 3) if agree["colour"] else None,
        "scored_against_ground_truth": len(agree["motion"]),
    }  # fmt: skip


def _first_colour(text: str) -> str | None:
    from charanim.colours import NAMED

    for name in sorted(NAMED, key=len, reverse=True):  # "dark blue" before "blue"
        if text.startswith(f"a {name} "):
            return name
    return None


def _write(out: Path, entries: list[dict], done: dict[str, dict]) -> None:
    lines = [json.dumps(done[e["id"]]) for e in entries if e["id"] in done]
    write_text_atomic(out, "".join(line + "\n" for line in lines))
