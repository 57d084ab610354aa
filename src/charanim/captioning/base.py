"""The captioner contract and its result."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from charanim.pose.keypoints import KeypointSequence


@dataclass
class Caption:
    motion: str
    appearance: str
    prompt: str
    captioner: str
    #: what was measured, for scripts and for scoring against ground truth
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Captioner(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def describe_motion(
        self, frames: np.ndarray | None, keypoints: KeypointSequence | None, fps: float
    ) -> tuple[str, dict]:
        """Text for the driving motion, and what it measured."""

    @abstractmethod
    def describe_appearance(
        self, image: np.ndarray, alpha: np.ndarray | None, keypoints: KeypointSequence | None
    ) -> tuple[str, dict]:
        """Text for the reference character, and what it measured."""

    def fuse(self, motion: str, appearance: str) -> str:
        """The target's prompt: the reference character performing the driving motion."""
        subject = appearance.strip().rstrip(".") or "a character"
        action = motion.strip().rstrip(".") or "moves"
        sentence = f"{subject} {action}"
        return sentence[0].upper() + sentence[1:] + "."
