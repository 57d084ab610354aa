"""Benchmark metrics, registered through ``charanim_register_metrics`` like a plugin's.

Each metric documents its range and direction and whether it needs the true target.
``compute(case, frames)`` returns a float (NaN when the case lacks what it needs).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from charanim.bench.cases import BenchCase
from charanim.metrics import (
    colour_histogram,
    flicker,
    foreground_mask,
    histogram_similarity,
    mask_iou,
    psnr,
    skeleton_agreement,
)


class Metric:
    name: ClassVar[str]
    description: ClassVar[str]
    range: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True

    def compute(self, case: BenchCase, frames: np.ndarray) -> float:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "description": cls.description, "range": cls.range,
                "direction": "higher" if cls.higher_is_better else "lower", "needs_target": cls.needs_target}  # fmt: skip


def _output_mask(case: BenchCase, frames: np.ndarray) -> np.ndarray:
    """Where the output shows a character: pixels unlike the scene's background."""
    return foreground_mask(frames, case.background)


class PSNR(Metric):
    name, description, range = "psnr", "PSNR of output vs true target, whole frame (dB)", "0..inf dB"

    def compute(self, case, frames):
        return psnr(frames, case.target)


class PSNRCharacter(Metric):
    name, description, range = "psnr_character", "PSNR inside the true character mask (dB)", "0..inf dB"

    def compute(self, case, frames):
        return psnr(frames, case.target, case.target_mask) if case.target_mask is not None else float("nan")


def _ssim_map(frames: np.ndarray, target: np.ndarray) -> np.ndarray:
    from torchmetrics.functional.image import structural_similarity_index_measure

    a = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    b = torch.from_numpy(target).permute(0, 3, 1, 2).float() / 255
    _, full = structural_similarity_index_measure(a, b, data_range=1.0, return_full_image=True)
    return full.mean(1).numpy()


class SSIM(Metric):
    name, description, range = "ssim", "structural similarity to the true target, whole frame", "-1..1"

    def compute(self, case, frames):
        return float(_ssim_map(frames, case.target).mean())


class SSIMCharacter(Metric):
    name, description, range = (
        "ssim_character",
        "structural similarity inside the true character mask",
        "-1..1",
    )

    def compute(self, case, frames):
        if case.target_mask is None or not (case.target_mask > 0).any():
            return float("nan")
        return float(_ssim_map(frames, case.target)[case.target_mask > 0].mean())


class ForegroundIoU(Metric):
    name, description, range = (
        "fg_iou",
        "IoU of the output's character silhouette (pixels unlike the scene's background, seen in the "
        "true frames where the character is not) and the true one",
        "0..1",
    )

    def compute(self, case, frames):
        if case.target_mask is None:
            return float("nan")
        return mask_iou(_output_mask(case, frames), case.target_mask)


class KeypointAgreement(Metric):
    name = "keypoint_agreement"
    description = "true target keypoints on the output character x output character near that skeleton"
    range = "0..1"

    def compute(self, case, frames):
        if case.target_keypoints is None or case.reference_keypoints is None:
            return float("nan")
        fmt = case.reference_keypoints.header.body_format
        return skeleton_agreement(case.target_keypoints, fmt, _output_mask(case, frames))


class TemporalError(Metric):
    name, description, range = (
        "temporal_error",
        "mean |frame change of output - frame change of target| (0-255)",
        "0..255",
    )
    higher_is_better = False

    def compute(self, case, frames):
        if len(frames) < 2:
            return float("nan")
        out, truth = (
            np.diff(frames.astype(np.float32), axis=0),
            np.diff(case.target.astype(np.float32), axis=0),
        )
        return float(np.abs(out - truth).mean())


class Flicker(Metric):
    name, description, range = "flicker", "mean second temporal difference: jitter (0-255)", "0..255"
    higher_is_better, needs_target = False, False

    def compute(self, case, frames):
        return flicker(frames)


class ColourDrift(Metric):
    name = "colour_drift"
    description = (
        "largest distance between the mean colour of any 8-frame stretch of the output and of its first 8 "
        "frames, less the same measured on the driving video (the motion's own colour change); RGB units"
    )
    range = "0..441"
    higher_is_better, needs_target = False, False
    span = 8

    def compute(self, case, frames):
        return max(0.0, _drift(frames, self.span) - _drift(case.driving[: len(frames)], self.span))


def _drift(frames: np.ndarray, span: int) -> float:
    if len(frames) < 2 * span:
        return 0.0
    means = [
        frames[i : i + span].reshape(-1, 3).astype(np.float64).mean(0)
        for i in range(0, len(frames) - span + 1, span // 2)
    ]
    return float(max(np.linalg.norm(m - means[0]) for m in means))


class Identity(Metric):
    name, description, range = (
        "identity",
        "colour-histogram similarity of output character and reference (per frame mean)",
        "0..1",
    )
    needs_target = False

    def compute(self, case, frames):
        reference_mask = (
            case.reference_mask > 0
            if case.reference_mask is not None
            else _output_mask(case, case.reference[None])[0]
        )
        reference = colour_histogram(case.reference[reference_mask])
        masks = _output_mask(case, frames)
        scores = [
            histogram_similarity(colour_histogram(f[m]), reference)
            for f, m in zip(frames, masks, strict=True)
            if m.any()
        ]
        return float(np.mean(scores)) if scores else 0.0


class MotionFidelity(Metric):
    name = "motion_fidelity"
    description = "retargeted driving keypoints on the output character x output character near that skeleton"
    range = "0..1"
    needs_target = False

    def compute(self, case, frames):
        from charanim.pose.retarget import retarget

        if case.driving_keypoints is None or case.reference_keypoints is None:
            return float("nan")
        fmt = case.reference_keypoints.header.body_format
        if case.driving_keypoints.header.body_format != fmt:
            return float("nan")
        height, width = frames.shape[1:3]
        moved = retarget(
            case.driving_keypoints.body_array()[: len(frames)],
            case.reference_keypoints.body_array()[0],
            fmt,
            reference_box=(0, 0, width, height),
        )
        return skeleton_agreement(moved, fmt, _output_mask(case, frames))


class SetMetric(Metric):
    """A metric of a whole set of frames (every frame of every case of a contender), not of
    one case: the runner caches per-case ``features`` of the output and of the target,
    and the report scores each contender (and each group) with ``score``."""

    set_level: ClassVar[bool] = True

    def available(self) -> str | None:
        """None if the metric can run here; otherwise why not (one line)."""
        return None

    def features(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, output: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def compute(self, case, frames):  # scored per set, not per case
        return float("nan")


class FID(SetMetric):
    name = "fid"
    description = (
        "Fréchet Inception distance of output frames vs true target frames, over all frames of all cases "
        "(Inception 2015-12-05 pool features; small sets are biased upward: compare within one run)"
    )
    range = "0..inf"
    higher_is_better = False

    def __init__(self):
        self._network = None

    def available(self):
        from charanim.bench.inception import MetricUnavailable, weights_path

        try:
            weights_path()
        except MetricUnavailable as exc:
            return str(exc)
        return None

    def features(self, frames):
        import torch.nn.functional as F

        from charanim.bench.inception import INPUT_RANGE, SIZE, load_network

        if self._network is None:
            self._network = load_network()
        out = []
        with torch.no_grad():
            for chunk in np.array_split(frames, max(1, len(frames) // 16)):
                x = torch.from_numpy(chunk).permute(0, 3, 1, 2).float() / 255
                x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
                x = x * (INPUT_RANGE[1] - INPUT_RANGE[0]) + INPUT_RANGE[0]
                out.append(self._network(x).double().numpy())
        return np.concatenate(out)

    def score(self, output, target):
        return frechet_distance(output, target)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|μa - μb|² + tr(Σa + Σb - 2 (Σa Σb)^½)`` between the Gaussians fitted to the rows of
    ``a`` and ``b``. The trace of the matrix square root is the sum of the square roots of
    the eigenvalues of Σa Σb (real and non-negative for covariance matrices; numerical
    noise below zero is clipped), which avoids an iterative ``sqrtm``."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b).real.clip(min=0)
    return float(
        ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eigenvalues).sum()
    )


BUILTIN_METRICS = (
    PSNR,
    PSNRCharacter,
    SSIM,
    SSIMCharacter,
    ForegroundIoU,
    KeypointAgreement,
    TemporalError,
    Flicker,
    ColourDrift,
    Identity,
    MotionFidelity,
    FID,
)
