import pytest
import torch

from charanim.conditioning import InjectionSite
from charanim.engine.injection import InjectionInput, Injector, build_adapter, dims_of, frame_attention_mask
from charanim.testing import tiny_transformer

FRAMES, HEIGHT, WIDTH = 2, 8, 16  # tokens per frame with patch (1, 4, 4): 2 x 4 = 8


def _inputs():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(1, 8, FRAMES, HEIGHT, WIDTH, generator=g)
    return hidden, torch.tensor([400.0]), torch.randn(1, 3, 16, generator=g)


def _feed(site):
    g = torch.Generator().manual_seed(1)
    if site is InjectionSite.CHANNELS:
        return InjectionInput(extra=torch.randn(1, 3, FRAMES, HEIGHT, WIDTH, generator=g))
    if site is InjectionSite.RESIDUAL:
        mask = torch.ones(1, 1, FRAMES, 2, 4)
        return InjectionInput(features=torch.randn(1, FRAMES, 5, generator=g), token_mask=mask)
    return InjectionInput(
        features=torch.randn(1, FRAMES, 5, generator=g),
        feature_frames=torch.arange(FRAMES),
        token_frames=torch.arange(FRAMES).repeat_interleave(8),
    )


@pytest.mark.parametrize("site", [InjectionSite.CHANNELS, InjectionSite.RESIDUAL, InjectionSite.TOKENS])
def test_zero_initialised_adapter_leaves_the_output_unchanged_and_learns(site):
    transformer = tiny_transformer()
    hidden, timestep, text = _inputs()
    adapter = build_adapter(site, dims_of(transformer), channels=3, feature_dim=5)
    with torch.no_grad():
        expected = transformer(hidden, timestep, text).sample
        injector = Injector(transformer, {"c": (site, adapter)})
        with injector.feeding({"c": _feed(site)}):
            assert torch.equal(transformer(hidden, timestep, text).sample, expected)
        for parameter in adapter.parameters():  # as if trained
            parameter.add_(0.1)
        with injector.feeding({"c": _feed(site)}):
            changed = transformer(hidden, timestep, text).sample
        assert not torch.allclose(changed, expected)
        unfed = transformer(hidden, timestep, text).sample  # no input: adds nothing
        assert torch.equal(unfed, expected)
        injector.remove()
        assert torch.equal(transformer(hidden, timestep, text).sample, expected)


def test_gradients_reach_zero_initialised_adapters():
    transformer = tiny_transformer()
    hidden, timestep, text = _inputs()
    adapter = build_adapter(InjectionSite.RESIDUAL, dims_of(transformer), feature_dim=5)
    injector = Injector(transformer, {"c": (InjectionSite.RESIDUAL, adapter)})
    with injector.feeding({"c": _feed(InjectionSite.RESIDUAL)}):
        transformer(hidden, timestep, text).sample.square().mean().backward()
    assert adapter.net[-1].weight.grad.abs().sum() > 0


def test_frame_attention_mask():
    mask = frame_attention_mask(torch.tensor([-1, 0, 1]), torch.tensor([0, 1, 1]), "cpu")
    assert mask[0].tolist() == [
        [True, False, False, False],  # a reference token sees only the null vector
        [True, True, False, False],
        [True, False, True, True],
    ]


@pytest.mark.parametrize(("layout", "pt"), [("spatial", 2), ("spatial", 1), ("temporal", 1)])
def test_frame_conditions_reach_the_tokens_of_their_own_frames(layout, pt):
    """charanim-tiny's patch spans 2 latent frames: the token of frames 2i and 2i+1 must
    see the condition vectors of those frames (and a residual their mean), not frame i's;
    the temporal layout's reference frame comes first and has none."""
    from types import SimpleNamespace

    from charanim.engine.pipeline import adapter_inputs

    frames = 8
    autoencoder = SimpleNamespace(temporal_factor=1, spatial_factor=8)
    backbone = SimpleNamespace(
        autoencoder=autoencoder, layout=SimpleNamespace(name=layout), patch_size=(pt, 2, 2), device="cpu"
    )
    shift = 1 if layout == "temporal" else 0
    reference = torch.zeros(1, 1, frames + shift, 4, 8)
    if layout == "temporal":
        reference[:, :, 0] = 1
    else:
        reference[..., :4] = 1
    packed = SimpleNamespace(reference_mask=reference)
    features = torch.arange(frames, dtype=torch.float32).view(1, frames, 1).expand(1, frames, 3)
    given = adapter_inputs(backbone, {"t": InjectionSite.TOKENS}, {"t": features}, {}, packed, frames)["t"]
    assert given.feature_frames.tolist() == [(f + shift) // pt for f in range(frames)]
    target_token_frames = set(given.token_frames[given.token_frames >= 0].tolist())
    assert target_token_frames == set(given.feature_frames.tolist())
    residual = adapter_inputs(backbone, {"r": InjectionSite.RESIDUAL}, {"r": features}, {}, packed, frames)[
        "r"
    ]
    assert residual.features.shape[1] == (frames + shift) // pt
    if pt == 2:
        assert residual.features[0, :, 0].tolist() == [0.5, 2.5, 4.5, 6.5]
