"""Restoring the reference's detail where the animation did not change it."""

import numpy as np
import pytest
import torch

from charanim.api import load_pipeline
from charanim.engine.detail import restore_detail
from charanim.engine.pipeline import SamplingSettings
from charanim.errors import InvalidOptionError
from charanim.testing import prepared_inputs


def _pictures(seed=0, frames=4, size=16):
    generator = torch.Generator().manual_seed(seed)
    reference = torch.rand(1, 3, 1, size, size, generator=generator) * 2 - 1
    blurred = torch.nn.functional.avg_pool3d(reference, (1, 3, 3), stride=1, padding=(0, 1, 1))
    return reference, blurred, blurred.expand(-1, -1, frames, -1, -1).clone()


def test_unchanged_frames_get_the_reference_back_and_changed_pixels_stay():
    reference, reconstruction, frames = _pictures()
    frames[:, :, 1, 4:8, 4:8] += 0.8  # a part that moved in frame 1
    out = restore_detail(frames, reference, reconstruction, tolerance=0.3)
    assert torch.allclose(out[:, :, 0], reference[:, :, 0].clamp(-1, 1), atol=1e-6)  # nothing moved
    assert torch.equal(out[:, :, 1, 5:7, 5:7], frames[:, :, 1, 5:7, 5:7].clamp(-1, 1))  # the moved part
    # the rim of the moved part (within the 3x3 maximum) is left as the model drew it too
    assert torch.equal(out[:, :, 1, 3, 4:8], frames[:, :, 1, 3, 4:8].clamp(-1, 1))
    # far from it, frame 1 is the reference again
    assert torch.allclose(out[:, :, 1, 12:, 12:], reference[:, :, 0, 12:, 12:], atol=1e-6)


def test_weight_falls_with_the_change_and_zero_tolerance_is_off():
    reference, reconstruction, frames = _pictures(frames=1)
    residual = reference - reconstruction
    for change, weight in [(0.0, 1.0), (0.15, 0.5), (0.3, 0.0), (0.6, 0.0)]:
        shifted = frames + change
        out = restore_detail(shifted, reference, reconstruction, tolerance=0.3)
        expected = (shifted + weight * residual).clamp(-1, 1)
        assert torch.allclose(out, expected, atol=1e-5), change
    assert torch.equal(restore_detail(frames, reference, reconstruction, 0.0), frames)


def test_the_pipeline_restores_detail_a_lossy_autoencoder_drops(tiny_vae_model, media):
    """Started nearly at the reference held still, the untrained autoencoder's frames are
    far from the reference; with the detail restored they are close to it."""
    pipeline = load_pipeline(tiny_vae_model, "rgb", device="cpu")
    reference, conditions, spec = prepared_inputs(pipeline, media["reference"], media["drive"], frames=9)
    still = ((reference.permute(1, 2, 0).numpy() + 1) * 127.5).round()

    def error(restore):
        settings = SamplingSettings(steps=10, strength=0.1, restore_detail=restore)
        result = pipeline(
            reference, conditions, spec, settings=settings, generator=torch.Generator().manual_seed(0)
        )
        assert result.settings.restore_detail == restore
        return np.abs(result.frames.astype(float) - still[None]).mean()

    assert error(2.0) * 3 < error(0.0)  # 2: every change restored, the largest in [-1, 1] units
    for outside in (-1.0, 2.5):
        with pytest.raises(InvalidOptionError, match="restore-detail must be in"):
            error(outside)
