"""AnimatePipeline on tiny random models: exact behaviour, not just shapes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from charanim.api import load_pipeline
from charanim.conditioning import Condition, Conditioner, InjectionSite
from charanim.engine.pipeline import AnimatePipeline, SamplingSettings
from charanim.errors import IncompatibleError, InvalidOptionError
from charanim.testing import make_tiny_model, prepared_inputs
from charanim.testing.bare_loop import bare_spatial_denoise


def _inputs(pipeline, media, frames=12, fps=8.0, size=(32, 32)):
    return prepared_inputs(pipeline, media["reference"], media["drive"], frames, fps, size)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _animate_example(**options):
    """``charanim animate`` on the bundled example, driven by its shipped skeletons."""
    from charanim.api import animate

    return animate(
        EXAMPLES / "reference.png",
        EXAMPLES / "driving.mp4",
        pose=EXAMPLES / "driving.keypoints.jsonl",
        reference_pose=EXAMPLES / "reference.keypoints.jsonl",
        **options,
    )


def _run(pipeline, media, seed=0, frames=12, **settings):
    reference, conditions, spec = _inputs(pipeline, media, frames=frames)
    return pipeline(
        reference,
        conditions,
        spec,
        settings=SamplingSettings(**settings),
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.fixture(scope="module")
def pipeline(tiny_model):
    return load_pipeline(tiny_model, "rgb", device="cpu")


def test_one_window_matches_a_bare_diffusers_loop(pipeline, media):
    reference, conditions, spec = _inputs(pipeline, media, frames=8)
    result = pipeline(
        reference,
        conditions,
        spec,
        settings=SamplingSettings(steps=4),
        generator=torch.Generator().manual_seed(7),
    )
    bare = bare_spatial_denoise(
        pipeline.backbone.transformer, reference, conditions[0].video, steps=4, seed=7
    )
    assert len(result.windows) == 1
    difference = np.abs(result.frames.astype(int) - bare.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_the_reference_is_reimposed_before_every_model_call(pipeline, media, monkeypatch):
    reference, conditions, spec = _inputs(pipeline, media, frames=8)
    seen = []
    original = pipeline.backbone.velocity

    def spy(hidden, timestep, text, image_embeds=None):
        seen.append((hidden[:, :3].clone(), timestep.clone()))
        return original(hidden, timestep, text, image_embeds)

    monkeypatch.setattr(pipeline.backbone, "velocity", spy)
    pipeline(
        reference,
        conditions,
        spec,
        settings=SamplingSettings(steps=5),
        generator=torch.Generator().manual_seed(0),
    )
    assert len(seen) == 5
    expected = reference[None, :, None].expand(1, 3, 8, 32, 32)
    for latents, timestep in seen:
        assert torch.equal(latents[..., :32], expected)
        assert timestep.shape == (1, 8 * 8 * 16) and timestep.view(8, 8, 16)[:, :, :8].eq(0).all()
    assert seen[0][1].max() == pytest.approx(1000.0)


def test_windows_continue_the_previous_window(pipeline, media):
    long = _run(pipeline, media, seed=3, frames=12, window=8, overlap=2, steps=3)
    short = _run(pipeline, media, seed=3, frames=8, window=8, overlap=2, steps=3)
    assert [(w.start, w.frames, w.context) for w in long.windows] == [(0, 8, 0), (6, 8, 2)]
    assert long.frames.shape[0] == 12
    # window 1 holds its first two frames at window 0's result, so the first 8 frames agree
    assert np.abs(long.frames[:8].astype(int) - short.frames.astype(int)).max() <= 1
    assert long.colour_drift >= 0


def test_window_larger_than_clip_is_one_pass(pipeline, media):
    result = _run(pipeline, media, frames=6, window=16, steps=2)
    assert len(result.windows) == 1 and result.frames.shape[0] == 6 and result.colour_drift == 0.0


def test_seed_and_motion_decide_the_output(pipeline, media, tmp_path):
    a = _run(pipeline, media, seed=1, frames=8, steps=3).frames
    assert np.array_equal(a, _run(pipeline, media, seed=1, frames=8, steps=3).frames)
    assert not np.array_equal(a, _run(pipeline, media, seed=2, frames=8, steps=3).frames)
    reference, conditions, spec = _inputs(pipeline, media, frames=8)
    flipped = [conditions[0].replace(video=conditions[0].video.flip(-1))]
    b = pipeline(
        reference,
        flipped,
        spec,
        settings=SamplingSettings(steps=3),
        generator=torch.Generator().manual_seed(1),
    ).frames
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0


def test_motion_guidance_changes_the_result_and_text_guidance_needs_an_encoder(pipeline, media):
    plain = _run(pipeline, media, frames=8, steps=3).frames
    guided = _run(pipeline, media, frames=8, steps=3, motion_guidance=3.0).frames
    assert np.abs(plain.astype(int) - guided.astype(int)).mean() > 1.0
    text_only = _run(pipeline, media, frames=8, steps=3, guidance=5.0)
    assert text_only.settings.guidance == 1.0 and np.array_equal(text_only.frames, plain)


def test_a_low_strength_starts_from_the_reference_held_still(pipeline, media):
    reference, _, _ = _inputs(pipeline, media, frames=8)
    still = ((reference.permute(1, 2, 0).numpy() + 1) * 127.5).round()

    def error_to_reference(result):
        return np.abs(result.frames.astype(float) - still[None]).mean()

    from_noise = _run(pipeline, media, frames=8, steps=10)
    nearly_the_reference = _run(pipeline, media, frames=8, steps=10, strength=0.1)
    # an untrained model moves a sample anywhere; from σ = 0.1 it has one small step to do it
    assert error_to_reference(nearly_the_reference) * 3 < error_to_reference(from_noise)
    assert nearly_the_reference.settings.strength == 0.1
    with pytest.raises(InvalidOptionError, match="strength"):
        _run(pipeline, media, frames=8, steps=2, strength=1.5)


def test_start_warp_noises_the_moved_reference_and_needs_a_model_with_the_warp(pipeline, media):
    with pytest.raises(
        InvalidOptionError, match="--start warp needs a model trained with the reference warp"
    ):
        _run(pipeline, media, frames=8, steps=2, strength=0.5, start="warp")
    with pytest.raises(InvalidOptionError, match="Unknown start 'moved'"):
        _run(pipeline, media, frames=8, steps=2, strength=0.5, start="moved")

    # charanim-tiny has the warp: from a little noise, the moved reference's motion stays
    # (the refiner off: the start alone; it would move the still start's limbs too)
    options = dict(strength=0.2, restore_detail=0.0, refine=False)
    motion = {}
    for start in ("still", "warp"):
        summary = _animate_example(start=start, **options)
        assert summary["start"] == start
        frames = summary["result"].frames.astype(float)
        motion[start] = np.abs(frames - frames[:1]).mean()
    assert motion["warp"] > 1.5 * motion["still"]  # measured 2.8 against 1.3


def test_a_model_whose_warp_is_filled_behind_moved_limbs_is_given_that_warp(tmp_path, monkeypatch):
    import json
    import shutil

    import charanim.engine.pipeline as pipeline_module
    from charanim.models.tiny import NAME, bundled_models_folder

    # charanim-tiny's weights with a config that says its warp is filled behind moved limbs
    model = tmp_path / "filled"
    shutil.copytree(bundled_models_folder() / NAME, model)
    config = json.loads((model / "charanim.json").read_text())
    (model / "charanim.json").write_text(json.dumps({**config, "warp_behind": "filled"}))
    behinds, warped = [], pipeline_module.warped_reference
    monkeypatch.setattr(
        pipeline_module, "warped_reference", lambda *a, **k: behinds.append(a[3]) or warped(*a, **k)
    )
    options = dict(steps=2, max_frames=8, refine=False)
    _animate_example(model=str(model), **options)
    assert behinds == ["filled"]
    _animate_example(**options)  # the shipped model
    assert behinds == ["filled", "reference"]


def test_a_flow_from_the_warp_that_predicts_no_change_returns_the_warp(tiny_model, media, monkeypatch):
    from charanim.engine.reference_warp import warped_reference
    from charanim.io.pixels import to_uint8

    # a model trained as a flow from its warp (flow_source: warp) whose velocity is zero:
    # it starts at the moved reference and stays there, whatever the seed
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    monkeypatch.setattr(pipeline.backbone.config, "reference_warp_channels", True)
    monkeypatch.setattr(pipeline.backbone.config, "flow_source", "warp")
    channels = pipeline.backbone.autoencoder.channels
    monkeypatch.setattr(
        pipeline.backbone, "velocity", lambda hidden, *args: torch.zeros_like(hidden[:, :channels])
    )
    reference, conditions, spec = _inputs(pipeline, media, frames=12)
    moved = to_uint8(warped_reference(conditions[0], reference, 12)).astype(int)
    assert np.abs(moved - moved[:1]).mean() > 1.0  # the driver moves: the warp is not the still reference
    for seed in (0, 1):
        result = pipeline(
            reference,
            conditions,
            spec,
            settings=SamplingSettings(steps=3, restore_detail=0.0),
            generator=torch.Generator().manual_seed(seed),
        )
        assert len(result.windows) == 2  # the second window's context frames are on the same path
        assert np.abs(result.frames.astype(int) - moved).max() <= 1


def test_temporal_layout_and_vae_latents(tmp_path, media, tiny_vae_model):
    temporal = load_pipeline(make_tiny_model(tmp_path / "temporal", layout="temporal"), "rgb", device="cpu")
    assert _run(temporal, media, frames=8, steps=2).frames.shape == (8, 32, 32, 3)
    vae = load_pipeline(tiny_vae_model, "rgb", device="cpu")
    result = _run(vae, media, frames=12, steps=2)
    # 9-frame windows (4k+1 for Wan's VAE) overlapping by 5
    assert [(w.start, w.frames) for w in result.windows] == [(0, 9), (4, 9)]
    assert result.frames.shape == (12, 32, 32, 3)


class _Residual(Conditioner):
    name, kind, site, feature_dim = "wiggle", "test", InjectionSite.RESIDUAL, 4
    description = "per-frame sinusoids (test only)"

    def prepare(self, driving, reference, spec):
        t = torch.arange(spec.frames, dtype=torch.float32)[:, None]
        return Condition(self.name, self.site, features=torch.sin(t * torch.arange(1, 5)))


class _Tokens(_Residual):
    name, site = "tokens", InjectionSite.TOKENS


class _Channels(_Residual):
    name, site, channels, feature_dim = "channels", InjectionSite.CHANNELS, 1, None

    def prepare(self, driving, reference, spec):
        ramp = torch.linspace(-1, 1, spec.width).expand(1, spec.frames, spec.height, spec.width)
        return Condition(self.name, self.site, video=ramp.clone())


@pytest.mark.parametrize("extra", [_Residual, _Tokens, _Channels])
def test_adapter_conditioners_combine_with_in_context(tmp_path, media, extra):
    from charanim.plugins import get_plugins

    directory = make_tiny_model(tmp_path / "m", adapter_conditioners={extra.name: extra})
    backbone = load_pipeline(directory, "rgb", device="cpu").backbone
    rgb = get_plugins().conditioners.get("rgb")()
    frames_with = _run(AnimatePipeline(backbone, [rgb, extra()]), media, frames=8, steps=2).frames
    frames_without = _run(AnimatePipeline(backbone, [rgb]), media, frames=8, steps=2).frames
    assert np.abs(frames_with.astype(int) - frames_without.astype(int)).mean() > 0.5
    assert np.array_equal(
        frames_with, _run(AnimatePipeline(backbone, [rgb, extra()]), media, frames=8, steps=2).frames
    )


def test_adapter_conditioner_without_weights_is_refused(tiny_model):
    backbone = load_pipeline(tiny_model, "rgb", device="cpu").backbone
    with pytest.raises(IncompatibleError, match="no trained weights for conditioner 'wiggle'"):
        AnimatePipeline(backbone, [_Residual()])


def test_two_in_context_conditioners_are_refused(pipeline):
    rgb = pipeline.conditioners[0]
    with pytest.raises(IncompatibleError, match="both inject in-context"):
        AnimatePipeline(pipeline.backbone, [rgb, type(rgb)()])


def test_wan_i2v_backbone_runs_with_text_and_clip(tiny_wan_i2v, media):
    pipeline = load_pipeline(tiny_wan_i2v, "rgb", device="cpu")
    reference, conditions, spec = _inputs(pipeline, media, frames=9, fps=16.0)
    settings = SamplingSettings(steps=2, guidance=3.0)

    def run(prompt):
        generator = torch.Generator().manual_seed(0)
        return pipeline(
            reference, conditions, spec, prompt=prompt, settings=settings, generator=generator
        ).frames

    cat, robot = run("a cartoon cat walks"), run("a red robot dances")
    assert cat.shape == (9, 32, 32, 3)
    assert not np.array_equal(cat, robot)  # the UMT5 embedding reaches the model


def test_colour_correction_removes_a_window_colour_shift_and_keeps_real_changes():
    from charanim.engine.windows import match_overlap_colours

    rng = np.random.default_rng(0)
    previous = rng.integers(40, 200, (2, 16, 16, 3)).astype(np.uint8)
    later = rng.integers(40, 200, (6, 16, 16, 3)).astype(np.uint8)
    true_window = np.concatenate([previous, later])
    drifted = np.clip(true_window.astype(int) * [1.1, 1.0, 0.9] + [12, -5, 3], 0, 255).astype(np.uint8)
    fixed = match_overlap_colours(drifted, previous)
    assert (
        np.abs(fixed.astype(int) - true_window).mean()
        < 1.0
        < np.abs(drifted.astype(int) - true_window).mean()
    )
    # a window that already agrees over the overlap is left (almost) as it is
    assert np.abs(match_overlap_colours(true_window, previous).astype(int) - true_window).max() <= 1


def test_colour_correction_is_an_option_and_off_means_the_plain_crossfade(pipeline, tiny_vae_model, media):
    # a latent model: the overlap goes through the autoencoder again, so it can shift
    latent = load_pipeline(tiny_vae_model, "rgb", device="cpu")
    on = _run(latent, media, seed=5, frames=12, window=9, overlap=5, steps=2)
    off = _run(latent, media, seed=5, frames=12, window=9, overlap=5, steps=2, colour_correction="none")
    assert len(on.windows) == 2 and np.array_equal(on.frames[:4], off.frames[:4])  # window 0 untouched
    assert not np.array_equal(on.frames, off.frames)
    # in pixel space the overlap comes back exactly, and there is nothing to correct
    exact = _run(pipeline, media, seed=5, frames=20, window=8, overlap=2, steps=2)
    assert np.array_equal(
        exact.frames,
        _run(
            pipeline, media, seed=5, frames=20, window=8, overlap=2, steps=2, colour_correction="none"
        ).frames,
    )
    from charanim.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="colour correction"):
        _run(pipeline, media, frames=8, steps=1, colour_correction="auto")


def test_each_conditioner_of_a_combination_can_have_its_own_guidance(tmp_path, media):
    from charanim.plugins import get_plugins

    directory = make_tiny_model(tmp_path / "m", adapter_conditioners={_Tokens.name: _Tokens})
    backbone = load_pipeline(directory, "rgb", device="cpu").backbone
    rgb = get_plugins().conditioners.get("rgb")()
    pipeline = AnimatePipeline(backbone, [rgb, _Tokens()])
    calls = []
    hook = backbone.transformer.register_forward_hook(lambda *a: calls.append(1))

    def run(**scales):
        calls.clear()
        reference, conditions, spec = _inputs(pipeline, media, frames=8)
        settings = SamplingSettings(steps=2, conditioner_guidance=scales)
        frames = pipeline(
            reference, conditions, spec, settings=settings, generator=torch.Generator().manual_seed(0)
        ).frames
        return frames, len(calls)

    plain, plain_calls = run()
    same, same_calls = run(tokens=1.0)
    tokens_up, tokens_calls = run(tokens=4.0)
    rgb_up, _ = run(rgb=4.0)
    hook.remove()
    assert np.array_equal(plain, same) and plain_calls == same_calls == 2
    assert tokens_calls == 4  # one extra pass per step, without the tokens conditioner
    assert not np.array_equal(plain, tokens_up) and not np.array_equal(tokens_up, rgb_up)
    with pytest.raises(InvalidOptionError, match="--conditioner-guidance names pose"):
        run(pose=2.0)


def test_mean_colour_correction_removes_an_offset_and_keeps_contrast():
    from charanim.engine.windows import match_overlap_colours

    rng = np.random.default_rng(1)
    window = rng.integers(40, 200, (6, 8, 8, 3)).astype(np.uint8)
    shifted = (window.astype(int) + [10, -6, 4]).astype(np.uint8)
    fixed = match_overlap_colours(shifted, window[:2], gain=False)
    assert np.abs(fixed.astype(int) - window).max() <= 1
    # a contrast difference is not touched by the offset-only correction
    flat = (window.astype(float) * 0.8 + 24).round().astype(np.uint8)
    assert np.abs(match_overlap_colours(flat, window[:2], gain=False).astype(float).std() - flat.std()) < 0.5
