"""Keeping the reference's scene where the output still shows it (--scene keep)."""

import numpy as np
import pytest
import torch

from charanim.api import load_pipeline
from charanim.conditioning import Condition, InjectionSite
from charanim.engine.pipeline import SamplingSettings
from charanim.engine.scene import KEEP_TOLERANCE, keep_scene, reference_character
from charanim.errors import CharanimWarning, InvalidOptionError
from charanim.testing import prepared_inputs


def _pictures(frames=3, size=16):
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(1, 3, 1, size, size, generator=generator) * 2 - 1
    return reference, reference.expand(-1, -1, frames, -1, -1).clone()


def test_where_the_reference_shows_scene_speckle_goes_and_a_moved_character_stays():
    reference, frames = _pictures()
    character = torch.zeros(16, 16)
    character[4:10, 2:6] = 1.0  # the reference's character
    frames[:, :, :, 4:10, 2:6] += 0.1  # the model's blur on it: left alone
    frames[:, :, 1, 12:14, 12:14] += 0.1  # speckle on the scene: the scene again
    frames[:, :, 2, 4:10, 10:14] += 0.9  # the character moved over the scene: stays
    out = keep_scene(frames, reference, character)
    assert torch.equal(out[:, :, :, 4:10, 2:6], frames[:, :, :, 4:10, 2:6])
    assert torch.allclose(out[:, :, 1, :, 8:], reference[:, :, 0, :, 8:], atol=1e-6)
    assert torch.allclose(out[:, :, 2, 4:10, 10:14], frames[:, :, 2, 4:10, 10:14])
    assert torch.allclose(out[:, :, 2, 12:, :], reference[:, :, 0, 12:, :], atol=1e-6)


def test_the_scene_takes_over_as_the_change_falls_below_the_tolerance():
    reference, frames = _pictures(frames=1)
    scene = torch.zeros(16, 16)
    for change, kept in [
        (0.0, 1.0),
        (KEEP_TOLERANCE / 2, 1.0),
        (0.75 * KEEP_TOLERANCE, 0.5),
        (KEEP_TOLERANCE, 0.0),
    ]:
        out = keep_scene(frames + change, reference, scene)
        expected = kept * reference + (1 - kept) * (frames + change)
        assert torch.allclose(out, expected, atol=1e-5), change


def test_a_condition_that_does_not_say_gives_no_character():
    assert reference_character(None) is None
    plain = Condition("pose", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 4, 8, 8), meta={})
    assert reference_character(plain) is None
    told = Condition(
        "rgb", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 4, 8, 8),
        meta={"reference_character": lambda: np.ones((8, 8), np.float32)},
    )  # fmt: skip
    assert reference_character(told).shape == (8, 8)


def test_the_pipeline_keeps_the_scene_and_leaves_the_character(tiny_model, media, monkeypatch):
    """A model that changes nothing, started a little way up from the reference held still,
    leaves that noise as speckle everywhere; kept, where the rgb conditioner says the
    reference shows scene the frames are the reference, on its character the model's."""
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    channels = pipeline.backbone.autoencoder.channels
    monkeypatch.setattr(
        pipeline.backbone, "velocity", lambda hidden, *args: torch.zeros_like(hidden[:, :channels])
    )
    reference, conditions, spec = prepared_inputs(pipeline, media["reference"], media["drive"], frames=4)
    still = ((reference.permute(1, 2, 0).numpy() + 1) * 127.5).round()
    character = conditions[0].meta["reference_character"]()
    outside, inside = character == 0, character == 1  # between them: the feathered rim

    def run(scene):
        settings = SamplingSettings(steps=20, strength=0.05, restore_detail=0.0, scene=scene)
        result = pipeline(
            reference, conditions, spec, settings=settings, generator=torch.Generator().manual_seed(0)
        )
        assert result.settings.scene == scene
        return np.abs(result.frames.astype(float) - still[None]).max(-1)

    assert 0.2 < outside.mean() < 0.95 and inside.any()
    generated, kept = run("generate"), run("keep")
    assert generated[:, outside].mean() > 5.0 and kept[:, outside].mean() < 0.5
    assert np.array_equal(kept[:, inside], generated[:, inside])  # the model's own frames
    with pytest.raises(InvalidOptionError, match="scene"):
        run("still")
    # a condition that does not say which pixels are scene: the model's frames, and a warning
    del conditions[0].meta["reference_character"]
    with pytest.warns(CharanimWarning, match="does not say which of the reference's pixels are scene"):
        result = pipeline(
            reference, conditions, spec, settings=SamplingSettings(steps=20, strength=0.05, scene="keep")
        )
    assert result.settings.scene == "generate"
