"""Keeping the reference's scene outside where a character stands or goes (--scene keep)."""

import numpy as np
import pytest
import torch

from charanim.api import _fit_reference, load_pipeline
from charanim.conditioning import Condition, Driving, InjectionSite, OutputSpec, Reference
from charanim.engine.pipeline import SamplingSettings
from charanim.engine.scene import KEEP_TOLERANCE, keep_scene, motion_region
from charanim.errors import InvalidOptionError
from charanim.io import read_image, read_video


def _pictures(frames=3, size=16):
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(1, 3, 1, size, size, generator=generator) * 2 - 1
    return reference, reference.expand(-1, -1, frames, -1, -1).clone()


def test_outside_the_region_speckle_goes_and_a_clear_change_stays():
    reference, frames = _pictures()
    region = torch.zeros(3, 16, 16)
    region[:, :, :6] = 1.0  # the character's side of the frame
    frames[:, :, :, :, :6] += 0.9  # the model moved something there: stays
    frames[:, :, 1, 10:12, 10:12] += 0.1  # speckle outside: the reference again
    frames[:, :, 2, 10:12, 10:12] += 0.9  # a limb the region missed: stays the model's
    out = keep_scene(frames, reference, region)
    assert torch.equal(out[..., :6], frames[..., :6])
    assert torch.allclose(out[:, :, 1, :, 8:], reference[:, :, 0, :, 8:], atol=1e-6)
    assert torch.allclose(out[:, :, 2, 10:12, 10:12], frames[:, :, 2, 10:12, 10:12])
    assert torch.allclose(out[:, :, 0, :, 8:], reference[:, :, 0, :, 8:], atol=1e-6)


def test_the_reference_takes_over_as_the_change_falls_below_the_tolerance():
    reference, frames = _pictures(frames=1)
    region = torch.zeros(1, 16, 16)
    for change, kept in [
        (0.0, 1.0),
        (KEEP_TOLERANCE / 2, 1.0),
        (0.75 * KEEP_TOLERANCE, 0.5),
        (KEEP_TOLERANCE, 0.0),
    ]:
        out = keep_scene(frames + change, reference, region)
        expected = kept * reference + (1 - kept) * (frames + change)
        assert torch.allclose(out, expected, atol=1e-5), change


def test_a_condition_that_does_not_say_where_gives_no_region():
    assert motion_region(None, 4) is None
    plain = Condition("pose", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 4, 8, 8), meta={})
    assert motion_region(plain, 4) is None
    asked = []

    def region(start, count):
        asked.append((start, count))
        return np.ones((count, 8, 8), np.float32)

    cut = Condition(
        "rgb",
        InjectionSite.IN_CONTEXT,
        video=torch.zeros(3, 4, 8, 8),
        meta={"motion_region": region, "cut": 2},
    )
    assert motion_region(cut, 3).shape == (3, 8, 8) and asked == [(2, 3)]


def test_the_pipeline_keeps_the_scene_where_no_character_goes(tiny_model, media, monkeypatch):
    """A model that changes nothing, started a little way up from the reference held still,
    leaves that noise as speckle everywhere; kept, outside the rgb conditioner's motion
    region the frames are the reference, inside they stay the model's."""
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    channels = pipeline.backbone.autoencoder.channels
    monkeypatch.setattr(
        pipeline.backbone, "velocity", lambda hidden, *args: torch.zeros_like(hidden[:, :channels])
    )
    spec = OutputSpec(32, 32, 4, 8.0)
    image = read_image(media["reference"])
    video = read_video(media["drive"], fps=8.0, max_frames=4)
    conditions = [c.prepare(Driving(video=video), Reference(image), spec) for c in pipeline.conditioners]
    reference = _fit_reference(image, spec)
    still = ((reference.permute(1, 2, 0).numpy() + 1) * 127.5).round()
    region = conditions[0].meta["motion_region"](0, 4)
    outside, inside = region == 0, region == 1  # between them: the feathered rim

    def run(scene):
        settings = SamplingSettings(steps=20, strength=0.05, restore_detail=0.0, scene=scene)
        result = pipeline(
            reference, conditions, spec, settings=settings, generator=torch.Generator().manual_seed(0)
        )
        assert result.settings.scene == scene
        return np.abs(result.frames.astype(float) - still[None]).max(-1)

    assert 0.2 < outside.mean() < 0.95
    generated, kept = run("generate"), run("keep")
    assert generated[outside].mean() > 5.0 and kept[outside].mean() < 0.5
    assert inside.any() and np.array_equal(kept[inside], generated[inside])  # the model's own frames
    with pytest.raises(InvalidOptionError, match="scene"):
        run("still")
