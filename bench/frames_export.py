"""`streamo export frames` against the floor (ffmpeg decoding to a null sink) and the reference's approach.

Usage: python bench/frames_export.py [--videos 12] [--seconds 90]

Files: `--videos` H.264 videos, 640x360, `--seconds` long, at the broadcast rates 29.97, 25, 23.976 and
59.94 fps in turn (written here with PyAV), and a release of three samples per video (every turn
count as ingest counts it). Three runs on the same files, 2 cores each, frames per second of wall time:

* floor: `ffmpeg -threads 1 -i F -vf fps=1 -f null -`, two files at a time (one per core): decoding
  alone, the same sampled frames, nothing written;
* ours: `export_frames` on a local Ray with 2 CPUs (the Ray start-up is timed apart, it is paid once per
  command), JPEG quality 90, and again as PNG, exact timing;
* reference approach, written here from the reference plugin's description (its code is not copied):
  per sample, in a pool of 8 threads as its `to-image` batch does, OpenCV opens the video, seeks to every
  int(fps)-th frame with CAP_PROP_POS_FRAMES and reads it, and 8 threads write the frames as PNG, then a
  `.done` marker; a sample whose video already has its marker is skipped, as its cache does.

Then bytes per frame (JPEG 90, PNG) and the peak memory of `streamo export frames --executor local` on
a third and on all of the videos (flat: the ratio stays near 1). Results go to bench/results/ as JSON
and to stdout as Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.exports.frames.export import FramesRequest, export_frames
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor, ensure_ray
from streamo_data.store.tables import to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for

WORK = Path(__file__).parent / "_work" / "frames"
RESULTS = Path(__file__).parent / "results"
RATES = [Fraction(30000, 1001), Fraction(25), Fraction(24000, 1001), Fraction(60000, 1001)]


def make_video(path: Path, seconds: int, rate: Fraction, size: tuple[int, int] = (640, 360)) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # A smooth scene that pans (camera-like content; pure noise would make every frame an incompressible
    # outlier), with a grain of noise and a moving object.
    rng = np.random.default_rng(len(path.name))
    yy, xx = np.mgrid[0:size[1], 0:size[0] * 2].astype(np.float32)
    scene = np.stack([128 + 100 * np.sin(xx / 37 + c) * np.cos(yy / 23 - c) for c in (0.0, 1.3, 2.6)], axis=-1)
    texture = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
    temporary = path.with_suffix(".part.mp4")
    with av.open(str(temporary), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(int(seconds * rate)):
            shift = (index * 4) % size[0]
            frame = np.ascontiguousarray(texture[:, shift:shift + size[0]])
            cv2.circle(frame, ((index * 5) % size[0], size[1] // 2), 40, (0, 0, 255), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(temporary, path)


def make_release(videos: Path, names: list[str], root: Path) -> Path:
    rows = []
    for name in names:
        capture = cv2.VideoCapture(str(videos / name))
        count, rate = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
        turns = count // max(1, int(rate))
        for k in range(3):
            rows.append(to_row(StreamingSample.create(
                task="offline_qa", source="bench", video_id=video_id_for(name), video_path=name,
                duration_s=count / rate, fps=1.0, num_frames=turns,
                questions=[QuestionTurn(content=f"Question {k}?", time=0)],
                responses=[ResponseTurn(content=f"Answer {k}.", time=1 + k)])))
    if root.exists():
        shutil.rmtree(root)
    write_rows(root / "work" / SAMPLES, StreamingSample, rows)
    write_release(root / "work" / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def ffmpeg_floor(paths: list[Path]) -> tuple[float, int]:
    """Seconds to decode every file at 1 fps to a null sink, two at a time; and the frames it output."""
    def one(path: Path) -> int:
        done = subprocess.run(["ffmpeg", "-v", "error", "-nostats", "-threads", "1", "-i", str(path), "-vf", "fps=1",
                               "-f", "null", "-progress", "pipe:1", "-"], check=True, capture_output=True, text=True)
        frames = [line for line in done.stdout.splitlines() if line.startswith("frame=")]
        return int(frames[-1].split("=")[1])

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        frames = sum(pool.map(one, paths))
    return time.perf_counter() - start, frames


def _save(job: tuple[str, np.ndarray]) -> None:
    path, frame = job
    cv2.imwrite(path + ".tmp.png", frame)
    os.rename(path + ".tmp.png", path)


_locks: dict[str, threading.Lock] = {}


def reference_approach(records: list[dict], out: Path, sample_threads: int) -> int:
    """Frames as the reference plugin makes them (see the module docstring): one sample at a time as its
    preprocessor runs in training (``sample_threads=1``), or 8 at a time as its ``to-image`` batch would;
    returns the number of frame files it wrote."""
    written = 0
    guard = threading.Lock()

    def sample(record: dict) -> None:
        nonlocal written
        video = record["videos"][0]
        stem = os.path.splitext(os.path.basename(video))[0]
        folder = out / f"{stem}_frames"
        with guard:
            lock = _locks.setdefault(stem, threading.Lock())
        with lock:  # the plugin's per-video file lock
            if (folder / ".done").exists():
                return
            folder.mkdir(parents=True, exist_ok=True)
            capture = cv2.VideoCapture(video)
            rate, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            step = max(1, int(rate))
            jobs = []
            for k, target in enumerate(range(0, count, step)):
                capture.set(cv2.CAP_PROP_POS_FRAMES, target)
                ok, frame = capture.read()
                if not ok:
                    break
                jobs.append((str(folder / f"frame_{k:06d}.png"), frame))
            capture.release()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(_save, jobs))
            (folder / ".done").write_text(f"frames={len(jobs)}\nvideo_fps={rate}\nextraction_fps=1.0\n")
            with guard:
                written += len(jobs)

    with ThreadPoolExecutor(sample_threads) as pool:
        list(pool.map(sample, records))
    return written


def peak_memory_mib(release: Path, videos: Path, out: Path) -> float:
    """Peak RSS of a whole `streamo export frames --executor local` process."""
    code = ("import resource, sys; from streamo_data.cli import app; sys.argv = sys.argv[1:]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, "streamo", "export", "frames", str(release), "--video-root",
                           str(videos), "--out", str(out), "--executor", "local"],
                          check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def folder_bytes(out: Path, suffix: str) -> tuple[int, int]:
    files = list(out.rglob(f"frame_*{suffix}"))
    return sum(f.stat().st_size for f in files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=90)
    args = parser.parse_args()
    videos = WORK / "videos"
    names = [f"v{k:02d}_{float(RATES[k % len(RATES)]):.3f}fps.mp4" for k in range(args.videos)]
    for k, name in enumerate(names):
        make_video(videos / name, args.seconds, RATES[k % len(RATES)])
    release = make_release(videos, names, WORK / "rel")
    runs = WORK / "runs"
    shutil.rmtree(runs, ignore_errors=True)

    floor_s, floor_frames = ffmpeg_floor([videos / n for n in names])

    start = time.perf_counter()
    ensure_ray(Executor(kind="ray", num_cpus=2))
    ray_start_s = time.perf_counter() - start
    # Ray's workers import the decoders on their first task; a warm-up over the first videos pays that
    # once, as a long export does (it is not counted).
    export_frames(FramesRequest(make_release(videos, names[:2], WORK / "rel_warm"), videos, runs / "warm"),
                  executor=Executor(kind="ray", num_cpus=2))
    ours: dict[str, dict] = {}
    for image_format, backend in (("jpeg", "pyav"), ("jpeg", "decord"), ("png", "pyav")):
        out = runs / f"ours_{image_format}_{backend}"
        start = time.perf_counter()
        summary = export_frames(FramesRequest(release, videos, out, image_format=image_format, backend=backend),
                                executor=Executor(kind="ray", num_cpus=2))
        seconds = time.perf_counter() - start
        size, count = folder_bytes(out, ".jpg" if image_format == "jpeg" else ".png")
        assert count == summary.frames_written and summary.videos == {"written": len(names)}
        ours[f"{image_format}, {backend}"] = {"seconds": seconds, "frames": count, "fps": count / seconds,
                              "bytes_per_frame": size / count}

    records = [json.loads(line) for line in (runs / "ours_jpeg_pyav" / "images.jsonl").open()]
    by_id = {video_id_for(n): n for n in names}
    for record in records:  # the stream format's video path, as the reference reads it
        record["videos"] = [str(videos / by_id[Path(record["images"][0]).parent.name])]
    start = time.perf_counter()
    reference_frames = reference_approach(records, runs / "reference", sample_threads=1)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    threaded_frames = reference_approach(records, runs / "reference_threads", sample_threads=8)
    threaded_s = time.perf_counter() - start

    third = max(1, len(names) // 3)
    small = make_release(videos, names[:third], WORK / "rel_small")
    memory_small = peak_memory_mib(small, videos, runs / "mem_small")
    memory_all = peak_memory_mib(make_release(videos, names, WORK / "rel_all"), videos, runs / "mem_all")

    floor_fps = floor_frames / floor_s
    reference_fps = reference_frames / reference_s
    threaded_fps = threaded_frames / threaded_s
    best = ours["jpeg, pyav"]
    result = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "videos": len(names), "seconds_each": args.seconds, "samples": len(records),
        "ffmpeg_floor": {"seconds": floor_s, "frames": floor_frames, "fps": floor_fps},
        "ray_start_s": ray_start_s, "ours": ours,
        "reference_approach": {"seconds": reference_s, "frames": reference_frames, "fps": reference_fps},
        "reference_approach_8_threads": {"seconds": threaded_s, "frames": threaded_frames, "fps": threaded_fps},
        "ours_jpeg_vs_floor": best["fps"] / floor_fps,
        "ours_jpeg_vs_floor_with_ray_start": best["frames"] / (best["seconds"] + ray_start_s) / floor_fps,
        "ours_jpeg_vs_reference": best["fps"] / reference_fps,
        "ours_jpeg_vs_reference_8_threads": best["fps"] / threaded_fps,
        "peak_memory_mib": {f"{third} videos": memory_small, f"{len(names)} videos": memory_all,
                            "ratio": memory_all / memory_small},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frames_export.json").write_text(json.dumps(result, indent=2))
    print(f"{len(names)} videos x {args.seconds} s, 640x360 H.264; Ray start {ray_start_s:.1f} s (not in 'ours')")
    print("| run | frames | seconds | frames/s | vs ffmpeg floor | vs reference approach | bytes/frame |")
    print("|---|---|---|---|---|---|---|")
    print(f"| ffmpeg -threads 1, fps=1, null sink (2 at a time) | {floor_frames} | {floor_s:.1f} | {floor_fps:.1f}"
          " | 1.00x | | |")
    for name, run in ours.items():
        print(f"| ours, {name} | {run['frames']} | {run['seconds']:.1f} | {run['fps']:.1f} |"
              f" {run['fps'] / floor_fps:.2f}x | {run['fps'] / reference_fps:.1f}x | {run['bytes_per_frame']:.0f} |")
    for label, frames, seconds in (("one sample at a time", reference_frames, reference_s),
                                   ("8 samples at a time", threaded_frames, threaded_s)):
        print(f"| reference approach, {label} (OpenCV seeks, PNG) | {frames} | {seconds:.1f} | {frames / seconds:.1f}"
              f" | {frames / seconds / floor_fps:.2f}x | {frames / seconds / reference_fps:.1f}x | |")
    print(f"peak memory: {third} videos {memory_small:.0f} MiB, {len(names)} videos {memory_all:.0f} MiB"
          f" (ratio {memory_all / memory_small:.2f})")


if __name__ == "__main__":
    main()
