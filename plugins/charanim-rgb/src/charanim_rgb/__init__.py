"""charanim-rgb: the end-to-end RGB conditioner (DreamActor-M2 stage 2)."""

__version__ = "0.1.0"
