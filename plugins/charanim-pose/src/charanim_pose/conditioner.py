"""The pose conditioner: the driving skeleton, retargeted to the reference, as pose maps.

``prepare`` takes the driving keypoints (a file given with ``--pose``, or the pose
estimator run on the driving frames, a single person's frames it missed filled from
their neighbours) and the reference's (a file given with
``--reference-pose``, or the estimator on the image), maps both onto the output grid,
retargets the motion to the reference's bone lengths, place and limbs (so the driving
body's shape does not leak into the result: a limb the reference's image shows the
place of but not the limb is not drawn, one the driver never shows keeps the
reference's pose), and renders OpenPose-style maps. The reference's
own map goes beside the reference in the in-context layout. ``augment`` scales bones by
U(0.8, 1.2) and jitters the skeleton's box, then re-renders.

Several people: driving and reference people are paired left to right (by where each
stands in the first frame it is seen); each driving person is retargeted to their
partner and all are drawn on one map. Driving people without a partner are left out.
"""

from __future__ import annotations

import numpy as np
import torch

from charanim.array_cache import ArrayCache
from charanim.conditioning import Condition, Conditioner, Driving, InjectionSite, OutputSpec, Reference
from charanim.errors import ConditionerInputError
from charanim.io.pixels import to_pixels
from charanim.io.resize import fit_transform
from charanim.pose.augment import bone_length_jitter, box_jitter
from charanim.pose.estimate import estimate_sequence, get_estimator, keypoints_from, require_person
from charanim.pose.keypoints import KeypointSequence
from charanim.pose.render import render_pose, render_pose_sequence
from charanim.pose.retarget import PARTS, retarget
from charanim.pose.smooth import fill_missed_frames

NO_REFERENCE_SKELETON = "for a cartoon, an animal or a sprite use --conditioner rgb, or give its keypoints with --reference-pose FILE."


class PoseConditioner(Conditioner):
    name = "pose"
    kind = "pose"
    site = InjectionSite.IN_CONTEXT
    needs = frozenset({"video"})
    description = "2D skeletons of the driving video, retargeted to the reference (OpenPose-style maps)"

    def __init__(self, transfer: str = "body", estimator: str | None = None, limb_width: float | None = None):
        """``limb_width``: of the drawn limbs, in output pixels (default: DWPose's 4 px at
        512, at least 1.5); a model trained with another width records it and is driven
        with it (``conditioner_options`` in its recipe and its charanim.json)."""
        if transfer not in PARTS:
            raise ConditionerInputError(
                f"Unknown --transfer part '{transfer}'; use one of {', '.join(PARTS)}."
            )
        if limb_width is not None and not limb_width > 0:
            raise ConditionerInputError(f"The pose maps' limb_width must be positive (got {limb_width}).")
        self.transfer = transfer
        self.estimator_name = estimator
        self.limb_width = limb_width

    # ------------------------------------------------------------------ prepare

    def prepare(self, driving: Driving, reference: Reference, spec: OutputSpec) -> Condition:
        motion = self._driving_keypoints(driving, spec)
        still = self._reference_keypoints(reference)
        drive_format, reference_format = motion.header.body_format, still.header.body_format
        if drive_format != reference_format:
            raise ConditionerInputError(
                f"The driving skeleton is {drive_format} and the reference's is {reference_format}: the pose "
                "conditioner needs one body format for both (use --conditioner rgb across body plans)."
            )
        size = (spec.width, spec.height)
        drive_source = _resample_people(motion, spec)
        drive_people = _to_output(drive_source, (motion.header.width, motion.header.height), size, spec.fit)
        reference_people = _to_output(
            _people(still)[:, 0], (still.header.width, still.header.height), size, spec.fit
        )
        drive_people, reference_people = _pair_left_to_right(drive_people, reference_people)
        box = _image_box((still.header.width, still.header.height), size, spec.fit)
        retargeted = np.stack([
            retarget(d, r, drive_format, self.transfer, reference_box=box)
            for d, r in zip(drive_people, reference_people, strict=True)
        ])  # fmt: skip
        condition = self._condition(retargeted, reference_people, drive_format, size)
        # the driving skeleton before retargeting, for backbones that place the character
        # where the driver stands (Wan-Animate's replace mode) or crop the driving face
        condition.meta.update(
            driving_keypoints=drive_people[0],
            # the fit transform keeps left-to-right order: the same person as drive_people[0]
            driving_source_keypoints=drive_source[np.argmin([_first_x(p) for p in drive_source])],
            driving_source_size=(motion.header.width, motion.header.height),
        )
        return condition

    def _condition(
        self, people: np.ndarray, reference_people: np.ndarray, body_format: str, size
    ) -> Condition:
        """``people`` ``[P, F, K, 3]`` and ``reference_people`` ``[P, K, 3]``, output pixels."""
        width = self.limb_width
        maps = render_pose_sequence(people[0], body_format, size, width)
        for person in people[1:]:
            maps = np.stack([
                render_pose(b, body_format, size, width=width, canvas=m) for b, m in zip(person, maps, strict=True)
            ])  # fmt: skip
        video = to_pixels(maps)
        frames = people.shape[1]
        seen = torch.from_numpy((people[..., 2] > 0).any(-1).any(0).astype(np.float32))
        valid = seen.view(1, -1, 1, 1).expand(1, frames, size[1], size[0]).clone()
        own = _reference_map(reference_people, body_format, tuple(size), width)
        reference_map = to_pixels(own.copy())[:, None]  # the cached map stays read-only
        meta = {
            "keypoints": people[0], "reference_keypoints": reference_people[0], "body_format": body_format,
            "people_keypoints": people, "people_reference_keypoints": reference_people,
        }  # fmt: skip
        return Condition(self.name, self.site, video=video, valid=valid, reference=reference_map, meta=meta)

    def _estimator(self):
        return get_estimator(self.estimator_name) if self.estimator_name else get_estimator()

    def _driving_keypoints(self, driving: Driving, spec: OutputSpec) -> KeypointSequence:
        given = keypoints_from(driving.keypoints)
        if given is None:
            if driving.video is None:
                raise ConditionerInputError(
                    "The pose conditioner needs a driving video or its keypoints (--pose)."
                )
            video = driving.video
            frames = video.frames[: spec.frames]
            given = estimate_sequence(
                self._estimator(), frames, video.fps, video.source_size, str(video.path or "")
            )
            given = _bridge_missed_detections(given)
        require_person(
            given, "the driving video", "check that a person is visible, or give keypoints with --pose."
        )
        return given

    def _reference_keypoints(self, reference: Reference) -> KeypointSequence:
        given = keypoints_from(reference.keypoints)
        if given is None:
            image = reference.image
            given = estimate_sequence(
                self._estimator(), image.rgb[None], 1.0, image.size, str(image.path or "")
            )
        require_person(given, "the reference image", NO_REFERENCE_SKELETON)
        return given

    # ------------------------------------------------------------------ augment

    def augment(self, condition: Condition, generator: torch.Generator) -> Condition:
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        people, body_format = condition.meta["people_keypoints"], condition.meta["body_format"]
        size = (condition.video.shape[3], condition.video.shape[2])
        jittered = np.stack(
            [box_jitter(bone_length_jitter(p, body_format, rng)[0], size, rng) for p in people]
        )
        fresh = self._condition(jittered, condition.meta["people_reference_keypoints"], body_format, size)
        return fresh.replace(reference=condition.reference)


MAX_PEOPLE = 4


#: the references' own pose maps, per skeleton (12 KB at 64x64: the training world's 6,000
#: references fit; at 832x480, 1.2 MB, about 80)
REFERENCE_MAPS = ArrayCache(96 * 2**20)


def _reference_map(
    people: np.ndarray, body_format: str, size: tuple[int, int], width: float | None
) -> np.ndarray:
    """The reference's own pose map (every person of ``people`` ``[P, K, 3]``), drawn as
    its frames are; cached by skeleton, as training draws each reference again every epoch
    (read-only: shared)."""

    def draw() -> np.ndarray:
        own = render_pose_sequence(people[:1], body_format, size, width)[0]
        for person in people[1:]:
            own = render_pose(person, body_format, size, width=width, canvas=own)
        return own

    still = np.ascontiguousarray(people)
    return REFERENCE_MAPS.get((still.tobytes(), still.dtype.str, still.shape, body_format, size, width), draw)


def _bridge_missed_detections(sequence: KeypointSequence) -> KeypointSequence:
    """Estimated single-person poses with the frames the estimator missed filled from
    their neighbours (an empty frame would be drawn as no skeleton at all, which the
    model reads as "nobody here"); keypoints the user gave are used as they are."""
    if any(len(people) > 1 for people in sequence.frames):
        return sequence
    return KeypointSequence.from_body_array(sequence.header, fill_missed_frames(sequence.body_array()))


def _people(sequence: KeypointSequence) -> np.ndarray:
    """``[P, F, K, 3]``: every person the sequence holds (up to ``MAX_PEOPLE``), in file order."""
    count = min(max((len(people) for people in sequence.frames), default=0), MAX_PEOPLE)
    return np.stack([sequence.body_array(person) for person in range(max(count, 1))])


def _resample_people(sequence: KeypointSequence, spec: OutputSpec) -> np.ndarray:
    """Keypoints at the output's frame times (nearest earlier frame), ``[P, spec.frames, K, 3]``;
    a sequence shorter than the output holds its last frame."""
    people = _people(sequence)
    times = np.arange(spec.frames) / spec.fps
    index = np.minimum(np.floor(times * sequence.header.fps + 1e-6).astype(int), people.shape[1] - 1)
    return people[:, index]


def _first_x(points: np.ndarray) -> float:
    """Mean x of the first frame a person is seen in (``[F, K, 3]`` or ``[K, 3]``)."""
    frames = points.reshape(-1, *points.shape[-2:])
    for frame in frames:
        seen = frame[:, 2] > 0
        if seen.any():
            return float(frame[seen, 0].mean())
    return float("inf")


def _pair_left_to_right(drive: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort both by position; keep as many pairs as the smaller side has people."""
    drive = drive[np.argsort([_first_x(p) for p in drive], kind="stable")]
    reference = reference[np.argsort([_first_x(p) for p in reference], kind="stable")]
    pairs = min(len(drive), len(reference))
    return drive[:pairs], reference[:pairs]


def _image_box(source_size: tuple[int, int], size: tuple[int, int], fit: str) -> tuple[float, ...]:
    """Where the reference image lies on the output grid: (left, top, right, bottom)."""
    corners = fit_transform(source_size, size, fit).apply(np.array([[0.0, 0.0], source_size], np.float64))
    return (*corners.min(0), *corners.max(0))


def _to_output(
    points: np.ndarray, source_size: tuple[int, int], size: tuple[int, int], fit: str
) -> np.ndarray:
    transform = fit_transform(source_size, size, fit)
    out = points.copy()
    out[..., :2] = transform.apply(points[..., :2])
    return out
