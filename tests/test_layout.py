import pytest
import torch

from charanim.engine.layout import get_layout, per_token_timesteps, reference_token_mask
from charanim.errors import UnknownNameError


def _parts(seed=0, channels=3, frames=4, height=8, width=6):
    g = torch.Generator().manual_seed(seed)
    reference = torch.randn(1, channels, 1, height, width, generator=g)
    target = torch.randn(1, channels, frames, height, width, generator=g)
    motion = torch.randn(1, channels, frames, height, width, generator=g)
    valid = (torch.rand(1, 1, frames, height, width, generator=g) > 0.3).float()
    reference_motion = torch.randn(1, channels, 1, height, width, generator=g)
    return reference, target, motion, valid, reference_motion


@pytest.mark.parametrize("name", ["spatial", "temporal"])
def test_pack_unpack_round_trip(name):
    layout = get_layout(name)
    reference, target, motion, valid, reference_motion = _parts()
    packed = layout.pack(reference, target, motion, valid, reference_motion)
    assert torch.equal(layout.unpack(packed.latents, target.shape[2]), target)
    assert tuple(packed.latents.shape[2:]) == layout.packed_size(4, 8, 6)
    # the motion mask is exactly the validity, at the target's place; zero at the reference's
    assert torch.equal(layout.unpack(packed.motion_mask, 4), valid)
    assert torch.equal(layout.unpack(packed.condition, 4), motion)
    assert packed.reference_mask.sum() == reference.shape[-1] * reference.shape[-2] * (
        4 if name == "spatial" else 1
    )
    assert torch.equal(packed.reference_mask * packed.motion_mask, torch.zeros_like(packed.motion_mask))


def test_spatial_layout_puts_reference_left_in_every_frame():
    layout = get_layout("spatial")
    reference, target, motion, valid, reference_motion = _parts()
    packed = layout.pack(reference, target, motion, valid, reference_motion)
    for frame in range(4):
        assert torch.equal(packed.latents[:, :, frame, :, :6], reference[:, :, 0])
        assert torch.equal(packed.condition[:, :, frame, :, :6], reference_motion[:, :, 0])
    assert packed.reference_mask[..., :6].eq(1).all() and packed.reference_mask[..., 6:].eq(0).all()


def test_temporal_layout_leads_with_the_reference():
    layout = get_layout("temporal")
    reference, target, *_ = _parts()
    packed = layout.pack(reference, target)
    assert torch.equal(packed.latents[:, :, :1], reference)
    assert packed.reference_mask[:, :, 0].eq(1).all() and packed.reference_mask[:, :, 1:].eq(0).all()
    assert packed.motion_mask.eq(0).all()  # no motion given: nothing is valid
    assert packed.condition.shape == packed.latents.shape


@pytest.mark.parametrize("name", ["spatial", "temporal"])
def test_impose_reference_restores_exactly_and_leaves_the_target(name):
    layout = get_layout(name)
    reference, target, *_ = _parts()
    noisy = torch.randn_like(layout.pack(reference, target).latents)
    imposed = layout.impose_reference(noisy, reference)
    assert torch.equal(layout.unpack(imposed, 4), layout.unpack(noisy, 4))
    assert torch.equal(imposed, layout.pack(reference, layout.unpack(noisy, 4)).latents)


def test_reference_token_mask_follows_the_patch_grid():
    layout = get_layout("spatial")
    reference, target, *_ = _parts(frames=2, height=8, width=8)
    packed = layout.pack(reference, target)
    mask = reference_token_mask(packed.reference_mask, (1, 4, 4))
    # 2 frames x 2 rows x 4 columns; the left two columns of each row are the reference
    assert mask.shape == (1, 16)
    assert mask.view(2, 2, 4)[:, :, :2].all() and not mask.view(2, 2, 4)[:, :, 2:].any()


def test_per_token_timesteps_zero_the_reference_for_training_and_sampling_alike():
    layout = get_layout("spatial")
    reference, target, *_ = _parts(frames=2, height=8, width=8)
    packed = layout.pack(reference.expand(2, -1, -1, -1, -1), target.expand(2, -1, -1, -1, -1))
    tokens = reference_token_mask(packed.reference_mask, (1, 4, 4))
    training = per_token_timesteps(torch.tensor([250.0, 900.0]), tokens)  # a batch of σ·1000
    assert training.shape == (2, 16)
    assert torch.equal(training[:, tokens[0]], torch.zeros(2, 8))
    assert torch.equal(training[:, ~tokens[0]], torch.tensor([[250.0] * 8, [900.0] * 8]))
    sampling = per_token_timesteps(torch.tensor(500), tokens[:1])  # the scheduler's scalar
    assert sampling.shape == (1, 16) and sampling.max() == 500.0
    assert per_token_timesteps(torch.tensor(500), None).shape == (1,)  # one for every token


def test_unknown_layout():
    with pytest.raises(UnknownNameError, match="spatial, temporal"):
        get_layout("diagonal")


@pytest.mark.parametrize("name", ["spatial", "temporal"])
def test_reference_everywhere_holds_the_reference_at_every_place(name):
    layout = get_layout(name)
    reference, target, *_ = _parts()
    latents = layout.pack(reference, target).latents
    everywhere = layout.reference_everywhere(latents)
    assert everywhere.shape == latents.shape
    assert torch.equal(layout.unpack(everywhere, 4), reference.expand(-1, -1, 4, -1, -1))
