"""charanim-audio-face: face motion and speech audio as one conditioner (DreamActor-M1's
implicit face motion and audio for lip sync)."""

__version__ = "0.1.0"
