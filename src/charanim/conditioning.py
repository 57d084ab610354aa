"""The conditioner contract: how a driving signal becomes tensors the denoiser consumes.

A conditioner is a plugin-registered class (see ``hookspecs``). The engine asks it
to ``prepare`` a :class:`Condition` from the driving inputs (CPU side, before the
model, deterministic), and during training to ``augment`` it. Where the condition
enters the model is the conditioner's ``site``:

``in_context``
    an RGB-like video (pose maps, the driving frames) placed in the motion half of
    the in-context layout (DreamActor-M2, ``engine.layout``). At most one per run.
``channels``
    a video concatenated to the latent channels (new patch-embedding inputs).
``tokens``
    per-frame feature vectors attended to by extra cross-attention in every block.
``residual``
    per-frame feature vectors added to every token of that frame after patch embedding.

Every new trainable path (``channels``, ``tokens``, ``residual``) is zero-initialised
(``engine.injection``), so adding a conditioner leaves a pretrained backbone's output
unchanged until it is trained. Test a conditioner with
:class:`charanim.testing.ConditionerContract`.
"""

from __future__ import annotations

import dataclasses
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from charanim.io.audio import Audio
from charanim.io.image import LoadedImage
from charanim.io.resize import FitMode
from charanim.io.video import Video

KNOWN_NEEDS = frozenset({"video", "audio", "keypoints"})
#: regions of a character a conditioner may say it moves beyond what a skeleton says
#: (``Conditioner.drives``), each one charanim can locate from the keypoints
KNOWN_REGIONS = frozenset({"face"})


class InjectionSite(str, enum.Enum):
    IN_CONTEXT = "in_context"
    CHANNELS = "channels"
    TOKENS = "tokens"
    RESIDUAL = "residual"


@dataclass
class Driving:
    """What drives the motion. ``video`` frames are already sampled at the output fps
    (source resolution); ``keypoints`` and ``audio`` are optional files the user gave
    (or, from Python and in training, an in-memory ``KeypointSequence`` / ``Audio``)."""

    video: Video | None = None
    keypoints: Path | None = None
    audio: Path | Audio | None = None


@dataclass
class Reference:
    """The character to animate, and optionally keypoints the user gave for it."""

    image: LoadedImage
    keypoints: Path | None = None


@dataclass(frozen=True)
class OutputSpec:
    """The output grid every condition is aligned to."""

    width: int
    height: int
    frames: int
    fps: float
    fit: FitMode = "contain"


@dataclass
class Condition:
    """A prepared driving signal, aligned to the output frames.

    Which fields are set depends on the site:

    - ``video`` ``float [C, F, H, W]`` in [-1, 1] at the output size (``in_context``,
      ``channels``); ``reference`` ``[C, 1, H, W]`` is the same signal computed on the
      reference image (its own pose map, say), shown beside the reference in the
      layout; ``valid`` ``[1, F, H, W]`` in {0, 1} marks where the signal is defined
      (the motion mask M_m).
    - ``features`` ``float [F, D]``, one vector per output frame (``tokens``, ``residual``).
    """

    conditioner: str
    site: InjectionSite
    video: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    features: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        source = self.video if self.video is not None else self.features
        if source is None:
            raise ValueError(f"condition '{self.conditioner}' holds no tensor")
        return int(source.shape[1] if self.video is not None else source.shape[0])

    def replace(self, **changes: Any) -> Condition:
        return dataclasses.replace(self, **changes)

    def cut(self, start: int) -> Condition:
        """The frames from ``start`` on: a training crop of a condition prepared on the clip
        from its first frame. Per-frame tensors are cut; ``meta`` still describes the
        whole clip, and ``meta["cut"]`` says where the crop begins."""
        return self.replace(
            video=None if self.video is None else self.video[:, start:],
            valid=None if self.valid is None else self.valid[:, start:],
            features=None if self.features is None else self.features[start:],
            meta={**self.meta, "cut": start},
        )

    def validate(self, spec: OutputSpec) -> None:
        """Raise ValueError when the tensors do not match ``spec`` or the site."""
        name = self.conditioner
        if self.site in (InjectionSite.IN_CONTEXT, InjectionSite.CHANNELS):
            if self.video is None or self.video.ndim != 4:
                raise ValueError(f"{name}: a {self.site.value} condition needs video [C, F, H, W]")
            _, frames, height, width = self.video.shape
            if (frames, height, width) != (spec.frames, spec.height, spec.width):
                raise ValueError(
                    f"{name}: video is {frames}x{height}x{width} (FxHxW), "
                    f"the output is {spec.frames}x{spec.height}x{spec.width}"
                )
            if self.valid is not None and tuple(self.valid.shape) != (1, frames, height, width):
                raise ValueError(f"{name}: valid must be [1, F, H, W], got {tuple(self.valid.shape)}")
            if self.reference is not None and tuple(self.reference.shape) != (
                self.video.shape[0],
                1,
                height,
                width,
            ):
                raise ValueError(f"{name}: reference must be [C, 1, H, W], got {tuple(self.reference.shape)}")
            tensors = [self.video, self.valid, self.reference]
        else:
            if self.features is None or self.features.ndim != 2 or self.features.shape[0] != spec.frames:
                raise ValueError(f"{name}: a {self.site.value} condition needs features [F={spec.frames}, D]")
            tensors = [self.features]
        for tensor in tensors:
            if tensor is not None and not torch.isfinite(tensor).all():
                raise ValueError(f"{name}: condition has NaN or infinite values")
        if self.video is not None and self.video.abs().max() > 1.0 + 1e-4:
            raise ValueError(f"{name}: video values must lie in [-1, 1]")


class Conditioner(ABC):
    """Base class of every motion conditioner. Subclass, set the class attributes,
    implement :meth:`prepare`, and register the class through
    ``charanim_register_conditioners``.
    """

    #: unique name, what users pass to ``--conditioner``
    name: ClassVar[str]
    #: ``pose``, ``rgb``, ``audio``, ``face``... (several conditioners may share a kind)
    kind: ClassVar[str]
    site: ClassVar[InjectionSite]
    #: inputs :meth:`prepare` requires: a subset of ``KNOWN_NEEDS``
    needs: ClassVar[frozenset[str]] = frozenset({"video"})
    #: channels of ``Condition.video`` (3 = RGB-like, encoded by the backbone's VAE)
    channels: ClassVar[int] = 3
    #: width of ``Condition.features`` for ``tokens``/``residual`` conditioners
    feature_dim: ClassVar[int | None] = None
    #: one line for ``charanim plugins``
    description: ClassVar[str] = ""
    #: regions it moves that a skeleton does not (a subset of ``KNOWN_REGIONS``: an
    #: audio-face conditioner opens the mouth). A model's refiner, trained on runs driven
    #: by the motion condition alone, leaves them as the model drew them
    drives: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def prepare(self, driving: Driving, reference: Reference, spec: OutputSpec) -> Condition:
        """Turn the driving inputs into a condition aligned to ``spec``.

        Must be deterministic. Raise :class:`charanim.errors.ConditionerInputError`
        with a clear message when the inputs cannot drive this conditioner (no
        person found, no audio track...).
        """

    def augment(self, condition: Condition, generator: torch.Generator) -> Condition:
        """Training-time augmentation (returns a new condition; never mutates the input).

        The default is no augmentation. Pose conditioners jitter bone lengths and the
        bounding box, RGB conditioners jitter colour and geometry, so that the model
        cannot copy the driving character's identity.
        """
        return condition


def validate_conditioner_class(obj: Any) -> None:
    """Reject registrations that do not meet the contract (called by the plugin loader)."""
    if not (isinstance(obj, type) and issubclass(obj, Conditioner)):
        raise TypeError(f"{obj!r} is not a subclass of charanim.conditioning.Conditioner")
    for attribute in ("name", "kind", "site"):
        if not getattr(obj, attribute, None):
            raise TypeError(f"conditioner {obj.__name__} does not set '{attribute}'")
    if not isinstance(obj.site, InjectionSite):
        raise TypeError(f"conditioner {obj.name}: site must be an InjectionSite, got {obj.site!r}")
    unknown = set(obj.needs) - KNOWN_NEEDS
    if unknown:
        raise TypeError(f"conditioner {obj.name}: unknown needs {sorted(unknown)}")
    unknown = set(obj.drives) - KNOWN_REGIONS
    if unknown:
        raise TypeError(
            f"conditioner {obj.name}: unknown regions in drives {sorted(unknown)} (known: {sorted(KNOWN_REGIONS)})"
        )
    if obj.site in (InjectionSite.TOKENS, InjectionSite.RESIDUAL) and not obj.feature_dim:
        raise TypeError(f"conditioner {obj.name}: a {obj.site.value} conditioner must set feature_dim")
    if obj.site is InjectionSite.IN_CONTEXT and obj.channels != 3:
        raise TypeError(f"conditioner {obj.name}: in-context conditions are RGB-like (channels = 3)")
