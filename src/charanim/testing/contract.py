"""The conditioner contract suite: one set of tests every conditioner must pass.

Subclass it in a test module (the class name must start with ``Test``)::

    class TestPoseConditioner(ConditionerContract):
        conditioner_name = "pose"

Override :meth:`make_inputs` when your conditioner needs more than a driving video
(audio, keypoints); override ``expects_augmentation = False`` if it has none.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from charanim.conditioning import (
    KNOWN_NEEDS,
    Condition,
    Conditioner,
    Driving,
    InjectionSite,
    OutputSpec,
    Reference,
)
from charanim.errors import CharanimError
from charanim.io.image import read_image
from charanim.io.video import read_video
from charanim.testing.media import write_moving_figure_video, write_reference_image


class ConditionerContract:
    conditioner_name: str = ""
    spec = OutputSpec(width=32, height=32, frames=6, fps=8.0)
    expects_augmentation: bool = True

    # ------------------------------------------------------------------ inputs

    def make_inputs(self, tmp_path: Path) -> tuple[Driving, Reference]:
        """A driving video of a moving figure and a reference image."""
        video = write_moving_figure_video(tmp_path / "drive.mp4", frames=8, size=(64, 48), fps=self.spec.fps)
        image = write_reference_image(tmp_path / "ref.png", size=(48, 64))
        return Driving(video=read_video(video, fps=self.spec.fps)), Reference(read_image(image))

    @pytest.fixture
    def conditioner_class(self) -> type[Conditioner]:
        from charanim.plugins import get_plugins

        return get_plugins().conditioners.get(self.conditioner_name)

    @pytest.fixture
    def conditioner(self, conditioner_class) -> Conditioner:
        return conditioner_class()

    @pytest.fixture
    def prepared(self, conditioner, tmp_path) -> Condition:
        driving, reference = self.make_inputs(tmp_path)
        return conditioner.prepare(driving, reference, self.spec)

    # ------------------------------------------------------------------ the contract

    def test_registered_through_the_plugin_hooks(self, conditioner_class):
        from charanim.plugins import get_plugins

        entry = get_plugins().conditioners.entry(self.conditioner_name)
        assert entry.obj is conditioner_class
        assert entry.plugin, "every conditioner is attributed to the plugin that registered it"

    def test_declares_its_contract(self, conditioner_class):
        assert conditioner_class.name == self.conditioner_name
        assert conditioner_class.kind
        assert isinstance(conditioner_class.site, InjectionSite)
        assert set(conditioner_class.needs) <= KNOWN_NEEDS
        assert conditioner_class.description, "give a one-line description for 'charanim plugins'"

    def test_prepare_matches_the_output_spec(self, conditioner, prepared):
        assert prepared.conditioner == conditioner.name
        assert prepared.site is conditioner.site
        prepared.validate(self.spec)
        assert prepared.frames == self.spec.frames
        if prepared.video is not None:
            assert prepared.video.shape[0] == conditioner.channels
            assert prepared.video.std() > 0, "a constant condition carries no motion"

    def test_prepare_is_deterministic(self, conditioner, tmp_path):
        driving, reference = self.make_inputs(tmp_path)
        first = conditioner.prepare(driving, reference, self.spec)
        second = conditioner.prepare(driving, reference, self.spec)
        for a, b in zip(_tensors(first), _tensors(second), strict=True):
            assert torch.equal(a, b)

    def test_augment_is_seeded_and_pure(self, conditioner, prepared):
        before = copy.deepcopy(prepared)
        first = conditioner.augment(prepared, torch.Generator().manual_seed(0))
        again = conditioner.augment(prepared, torch.Generator().manual_seed(0))
        for a, b in zip(_tensors(prepared), _tensors(before), strict=True):
            assert torch.equal(a, b), "augment must not modify its input"
        for a, b in zip(_tensors(first), _tensors(again), strict=True):
            assert torch.equal(a, b), "augment must depend only on the generator"
        first.validate(self.spec)
        if self.expects_augmentation:
            other = conditioner.augment(prepared, torch.Generator().manual_seed(1))
            assert any(not torch.equal(a, b) for a, b in zip(_tensors(first), _tensors(other), strict=True))

    def test_new_modules_start_at_zero(self, conditioner_class):
        """Adding the conditioner to a backbone leaves its output unchanged at step 0."""
        if conditioner_class.site is InjectionSite.IN_CONTEXT:
            pytest.skip("in-context conditions add no module")
        from charanim.engine.injection import Injector, build_adapter, dims_of
        from charanim.testing.tiny_models import tiny_transformer

        transformer = tiny_transformer()
        adapter = build_adapter(
            conditioner_class.site,
            dims_of(transformer),
            channels=3,
            feature_dim=conditioner_class.feature_dim or 0,
        )
        hidden = torch.randn(1, 8, 2, 16, 32)
        timestep, text = torch.tensor([500.0]), torch.randn(1, 3, 16)
        with torch.no_grad():
            expected = transformer(hidden, timestep, text).sample
            injector = Injector(transformer, {"c": (conditioner_class.site, adapter)})
            feed = _random_feed(conditioner_class, hidden)
            with injector.feeding({"c": feed}):
                actual = transformer(hidden, timestep, text).sample
            injector.remove()
        assert torch.equal(expected, actual)

    def test_missing_inputs_give_a_clear_error(self, conditioner, tmp_path):
        _, reference = self.make_inputs(tmp_path)
        with pytest.raises(CharanimError) as raised:
            conditioner.prepare(Driving(), reference, self.spec)
        message = str(raised.value)
        assert message and "\n" not in message


def _tensors(condition: Condition) -> list[torch.Tensor]:
    return [
        t
        for t in (condition.video, condition.valid, condition.reference, condition.features)
        if t is not None
    ]


def _random_feed(conditioner_class, hidden):
    from charanim.engine.injection import InjectionInput

    batch, _, frames, height, width = hidden.shape
    site, dim = conditioner_class.site, conditioner_class.feature_dim or 0
    if site is InjectionSite.CHANNELS:
        return InjectionInput(extra=torch.randn(batch, 3, frames, height, width))
    if site is InjectionSite.RESIDUAL:
        return InjectionInput(
            features=torch.randn(batch, frames, dim), token_mask=torch.ones(batch, 1, frames, 4, 8)
        )
    tokens = frames * (height // 4) * (width // 4)
    return InjectionInput(
        features=torch.randn(batch, frames, dim),
        feature_frames=torch.arange(frames),
        token_frames=torch.from_numpy(np.repeat(np.arange(frames), tokens // frames)),
    )
