"""Helpers for testing charanim and its plugins: the conditioner contract suite,
tiny random models saved to a folder, and small synthetic media.

A plugin's conditioner tests can be one class::

    from charanim.testing import ConditionerContract

    class TestDepthConditioner(ConditionerContract):
        conditioner_name = "depth"
"""

from charanim.testing.contract import ConditionerContract
from charanim.testing.media import (
    moving_figure_frames,
    prepared_inputs,
    write_humanoid_world,
    write_moving_figure_video,
    write_reference_image,
)
from charanim.testing.tiny_models import make_tiny_model, make_tiny_wan_i2v, tiny_transformer

__all__ = [
    "ConditionerContract",
    "make_tiny_model",
    "make_tiny_wan_i2v",
    "moving_figure_frames",
    "prepared_inputs",
    "tiny_transformer",
    "write_humanoid_world",
    "write_moving_figure_video",
    "write_reference_image",
]
