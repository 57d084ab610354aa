"""--cache and --compile switch diffusers' own mechanisms on (checked by their hooks and
by what they do to the frames, never by timing)."""

import numpy as np
import pytest

from charanim.api import animate, load_pipeline
from charanim.errors import IncompatibleError, InvalidOptionError
from charanim.models.speed import SpeedSettings


def _frames(model, media, speed, steps=6):
    pipeline = load_pipeline(model, "rgb", device="cpu", speed=speed)
    summary = animate(media["reference"], media["drive"], pipeline=pipeline, steps=steps, seed=3)
    return pipeline, summary["result"].frames


def test_first_block_cache_reuses_steps_only_when_asked(tiny_model, media):
    _, plain = _frames(tiny_model, media, SpeedSettings())
    _, again = _frames(tiny_model, media, SpeedSettings())
    assert np.array_equal(plain, again)
    pipeline, cached = _frames(tiny_model, media, SpeedSettings(cache="first-block", cache_threshold=0.9))
    assert pipeline.backbone.transformer.is_cache_enabled
    assert "fbc_leader_block_hook" in pipeline.backbone.transformer.blocks[0]._diffusers_hook.hooks
    # a threshold this loose reuses most steps: the frames change, but stay frames
    assert not np.array_equal(plain, cached)
    assert cached.shape == plain.shape and 0 < cached.mean() < 255


def test_compile_wraps_the_repeated_blocks(tiny_model):
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu", speed=SpeedSettings(compile=True))
    blocks = pipeline.backbone.transformer.blocks
    assert all(getattr(block, "_compiled_call_impl", None) is not None for block in blocks)


def test_bad_speed_options(tiny_wan_animate2):
    with pytest.raises(InvalidOptionError, match="Unknown --cache"):
        SpeedSettings(cache="everything").validate()
    with pytest.raises(IncompatibleError, match="do not support diffusers' caches"):
        load_pipeline(tiny_wan_animate2, device="cpu", speed=SpeedSettings(cache="first-block"))
