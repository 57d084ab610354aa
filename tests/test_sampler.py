"""The sampler against a case with an exact answer.

For data x0 ~ N(μ, s²) and noise ε ~ N(0, 1), x_σ = (1-σ)x0 + σε is Gaussian and the
optimal velocity E[ε - x0 | x_σ] is linear in x_σ. Its ODE maps the starting noise ε
to exactly μ + s·ε (the monotone transport map between the two Gaussians), so a
correct sampler must land there from any starting point.
"""

import numpy as np
import pytest
import torch

from charanim.engine import sampler as flow

MU, S = 1.5, 0.4


def gaussian_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    sigma = float(t) / 1000.0
    var = (1 - sigma) ** 2 * S**2 + sigma**2
    centred = x - (1 - sigma) * MU
    expected_x0 = MU + (1 - sigma) * S**2 * centred / var
    expected_eps = sigma * centred / var
    return expected_eps - expected_x0


@pytest.mark.parametrize(("name", "steps", "tolerance"), [("euler", 400, 0.015), ("unipc", 50, 0.005)])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_reaches_the_exact_transport_map(name, steps, tolerance, shift):
    noise = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scheduler = flow.make_scheduler(name, shift)
    sample = flow.sample(gaussian_velocity, noise.clone(), scheduler, steps)
    assert torch.allclose(sample, MU + S * noise, atol=tolerance)
    assert sample.mean().item() == pytest.approx(MU, abs=0.02)
    assert sample.std().item() == pytest.approx(S, abs=0.02)


def test_unipc_is_higher_order_than_euler():
    noise = torch.randn(32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = MU + S * noise
    euler = flow.sample(gaussian_velocity, noise.clone(), flow.make_scheduler("euler", 1.0), 10)
    unipc = flow.sample(gaussian_velocity, noise.clone(), flow.make_scheduler("unipc", 1.0), 10)
    assert (unipc - exact).abs().max() * 5 < (euler - exact).abs().max()


def test_few_euler_steps_are_measurably_worse_than_many():
    noise = torch.randn(32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = []
    for steps in (2, 8, 64):
        sample = flow.sample(gaussian_velocity, noise.clone(), flow.make_scheduler("euler", 1.0), steps)
        errors.append((sample - (MU + S * noise)).abs().max().item())
    assert errors[0] > errors[1] > errors[2]


def test_schedule_spans_one_to_zero_with_the_shift_applied():
    scheduler = flow.make_scheduler("euler", 3.0)
    timesteps = flow.set_schedule(scheduler, 4)
    expected = flow.shift_sigmas(np.array([1.0, 0.75, 0.5, 0.25]), 3.0)
    assert np.allclose(timesteps.numpy() / 1000, expected, atol=1e-4)
    assert float(scheduler.sigmas[-1]) == 0.0


def test_project_is_applied_before_each_step_and_at_the_end():
    seen = []

    def project(x, sigma):
        seen.append(sigma)
        return x

    flow.sample(gaussian_velocity, torch.zeros(3), flow.make_scheduler("euler", 1.0), 4, project=project)
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_guidance_passes_and_nested_combination():
    assert len(flow.guidance_passes(1.0, 1.0)) == 1
    assert [(p.text, p.motion) for p in flow.guidance_passes(5.0, 1.0)] == [(True, True), (False, True)]
    assert len(flow.guidance_passes(1.0, 2.0)) == 3
    full, motion_only, none = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    # v = v_full + (s_t-1)(v_full - v_m) + (s_m-1)(v_m - v_none)
    combined = flow.combine_guidance([full, motion_only, none], text_scale=2.0, motion_scale=3.0)
    assert combined.item() == pytest.approx(3.0 + 1.0 * 1.0 + 2.0 * 1.5)
    assert flow.combine_guidance([full, motion_only], 1.0, 1.0).item() == 3.0


def test_per_conditioner_guidance_adds_one_pass_each_and_its_own_term():
    from charanim.engine.sampler import combine_guidance, guidance_passes

    passes = guidance_passes(2.0, 1.5, {"audio-face": 3.0, "pose": 1.0})
    assert [(p.text, p.motion, sorted(p.drop)) for p in passes] == [
        (True, True, []), (False, True, []), (False, False, []), (True, True, ["audio-face"]),
    ]  # fmt: skip
    full, no_text, nothing, no_audio = (torch.full((1,), v) for v in (1.0, 0.5, 0.25, 0.75))
    guided = combine_guidance([full, no_text, nothing, no_audio], 2.0, 1.5, {"audio-face": 3.0, "pose": 1.0})
    # 1 + (2-1)(1-0.5) + (1.5-1)(0.5-0.25) + (3-1)(1-0.75)
    assert guided.item() == pytest.approx(1 + 0.5 + 0.125 + 0.5)
    # alone, without text or motion scales
    assert guidance_passes(1.0, 1.0, {"pose": 2.0})[1].drop == frozenset({"pose"})
    assert combine_guidance([full, no_audio], 1.0, 1.0, {"pose": 2.0}).item() == pytest.approx(1.25)


def point_velocity(target: torch.Tensor):
    """The exact velocity when the data is the single point ``target``: x_σ - σ·v = target."""
    return lambda x, t: (x - target) / (float(t) / 1000.0)


@pytest.mark.parametrize("name", ["euler", "unipc"])
def test_a_partial_start_begins_at_its_sigma_from_the_noised_guess(name):
    target = torch.full((4, 8), 2.0, dtype=torch.float64)
    guess = torch.full((4, 8), 1.0, dtype=torch.float64)
    noise = torch.randn(4, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    seen = []

    def velocity(x, t):
        seen.append((x.clone(), float(t) / 1000.0))
        return point_velocity(target)(x, t)

    scheduler = flow.make_scheduler(name, 1.0)
    out = flow.sample(velocity, noise, scheduler, 10, init=guess, strength=0.4)
    assert flow.first_step(10, 0.4) == 6
    assert len(seen) == 4  # steps 6..9 of 10
    first_x, first_sigma = seen[0]
    assert first_sigma == pytest.approx(0.4, abs=1e-3)  # UniPC's grid is not exactly even
    assert torch.allclose(first_x, (1 - first_sigma) * guess + first_sigma * noise)
    assert torch.allclose(out, target, atol=1e-6)


def test_strength_one_or_no_guess_is_the_plain_run():
    noise = torch.randn(16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    plain = flow.sample(gaussian_velocity, noise.clone(), flow.make_scheduler("euler", 3.0), 6)
    full = flow.sample(
        gaussian_velocity, noise.clone(), flow.make_scheduler("euler", 3.0), 6, init=noise * 0, strength=1.0
    )
    assert torch.equal(plain, full)
    with pytest.raises(ValueError, match="strength"):
        flow.first_step(6, 0.0)
