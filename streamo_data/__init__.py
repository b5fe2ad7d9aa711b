"""streamo-data: build a Streamo-Instruct-style streaming-video instruction corpus and train a baseline."""

import os

# OpenCV's bundled FFmpeg prints a line per unreadable file ("moov atom not found"); we report each
# such file ourselves, as an error row with its reason, so its own log would only be noise.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"
