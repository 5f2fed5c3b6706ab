"""Outputs: where shown frames go (window, recorder, and anything else behind :class:`Output`)."""

from .base import Output, Outputs, check_frame
from .recorder import VideoRecorder, timestamped_path

__all__ = ["Output", "Outputs", "VideoRecorder", "check_frame", "timestamped_path"]
