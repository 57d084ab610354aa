"""charanim-pose: the skeleton conditioner (DreamActor-M2 stage 1)."""

__version__ = "0.1.0"
