"""Videos whose every frame shows its own native index as a barcode, at exact broadcast rates.

Written with PyAV (H.264 at a rational rate such as 30000/1001, so the container's timestamps are exact);
the index survives JPEG compression, so a test reads which native frame an exported image is, and checks
it against an index computed here from the rate alone.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 12
BLOCK = 16
SIZE = (BITS * BLOCK + 16, 64)  # width, height

RATES = {  # name: native frames per second
    "ntsc": Fraction(30000, 1001),
    "film": Fraction(24000, 1001),
    "pal": Fraction(25),
    "ntsc60": Fraction(60000, 1001),
}


def write_coded_video(path: Path, num_frames: int, rate: Fraction, codec: str = "libx264") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = SIZE
    ramp = (np.arange(width)[None, :, None] * 3).astype(np.int64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[24:] = ((ramp + index * 5) % 256).astype(np.uint8)
            for bit in range(BITS):
                if (index >> bit) & 1:
                    image[0:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_code(image: np.ndarray) -> int:
    """The native index an RGB or BGR frame shows (the code is grey, so channel order does not matter)."""
    return sum(1 << bit for bit in range(BITS)
               if image[3:BLOCK - 3, bit * BLOCK + 3:(bit + 1) * BLOCK - 3].mean() > 128)


def expected_reference(num_native: int, rate: Fraction, fps: float) -> list[int]:
    """Every int(rate/fps)-th native frame below the count: the reference preprocessor's pick."""
    step = max(1, int(rate / Fraction(fps)))
    return list(range(0, num_native, step))


def expected_exact(turns: int, rate: Fraction, fps: float, num_native: int | None = None) -> list[int]:
    """The native frame starting nearest i/fps (frame n starts at n/rate; a tie goes to the earlier),
    the last one for times past the end."""
    picks = []
    for i in range(turns):
        target = Fraction(i) / Fraction(fps)
        below = int(target * rate)  # floor: the frame starting at or before the target
        picks.append(below if target - Fraction(below) / rate <= Fraction(below + 1) / rate - target else below + 1)
    return picks if num_native is None else [min(p, num_native - 1) for p in picks]
