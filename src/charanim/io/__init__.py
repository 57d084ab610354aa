"""Media in and out: videos, images, atomic file writes."""

from charanim.io.atomic import atomic_output
from charanim.io.image import LoadedImage, read_image
from charanim.io.resize import FitTransform, fit_frames
from charanim.io.video import Video, VideoInfo, probe_video, read_video, write_video

__all__ = [
    "FitTransform",
    "LoadedImage",
    "Video",
    "VideoInfo",
    "atomic_output",
    "fit_frames",
    "probe_video",
    "read_image",
    "read_video",
    "write_video",
]
