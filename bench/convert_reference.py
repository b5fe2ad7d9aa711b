"""`streamo convert raw-to-stream` against the reference converter, on the same realistic input.

The reference is maifoundations/Streamo's `scripts/convert_streaming_video.py`. It is not vendored; to
get it, save the file from the public repository (https://github.com/maifoundations/Streamo, path
scripts/convert_streaming_video.py) as bench/_work/convert_streaming_video.py (bench/_work is git-ignored),
or pass its path with --reference. It needs opencv-python and tqdm, both in our virtualenv.

One run: a few hundred real MP4 files are written with OpenCV (10 to 60 s at 10 fps, tiny frames, so
that OpenCV really opens and counts each), then a raw JSON of N records over them (1 to 3 questions and
1 to 5 responses each, spans and instants, string and number times, 1% of records pointing at a missing
video). Both converters run on it, one after the other, each as its own process; the figures are wall
time and peak RSS of the whole process tree (the converter and every process it starts, sampled every
0.1 s with psutil), and the outputs must be byte-identical.

    .venv/bin/python bench/convert_reference.py --records 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the", "person", "picks", "up", "a", "red", "cup", "and", "walks", "toward", "door", "while", "dog", "runs",
         "across", "kitchen", "floor", "near", "window", "before", "someone", "opens", "fridge")


def make_videos(folder: Path, count: int, seed: int) -> list[str]:
    """``count`` real MP4 files of 10 to 60 s at 10 fps (kept between runs: they depend only on the seed)."""
    rng = random.Random(seed)
    names = []
    for index in range(count):
        name = f"clips/{index // 100:02d}/video_{index:04d}.mp4"
        seconds = rng.randint(10, 60)
        path = folder / name
        names.append(name)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
        for frame in range(seconds * 10):
            writer.write(np.full((32, 32, 3), frame % 255, np.uint8))
        writer.release()
    return names


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize() + "."


def seconds_value(rng: random.Random, value: float) -> str | int | float:
    """Times as they appear in the wild: integer strings mostly, some numbers and fractional strings."""
    kind = rng.random()
    if kind < 0.7:
        return str(int(value))
    if kind < 0.9:
        return int(value)
    return f"{value:.1f}"


def make_raw(path: Path, videos: list[str], records: int, seed: int) -> None:
    rng = random.Random(seed)
    duration_rng = random.Random(seed)  # the same draws as make_videos, so that times fit each video
    durations = {name: duration_rng.randint(10, 60) for name in videos}
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        for index in range(records):
            name = rng.choice(videos)
            length = durations[name]
            questions = [{"content": sentence(rng)[:-1] + "?", "time": seconds_value(rng, rng.uniform(0, length))}
                         for _ in range(rng.randint(1, 3))]
            questions[0]["time"] = "0"
            responses = []
            for _ in range(rng.randint(1, 5)):
                start = rng.uniform(0, length - 2)
                if rng.random() < 0.6:
                    end = min(length, start + rng.uniform(1, 8))
                    responses.append({"content": sentence(rng), "st_time": seconds_value(rng, start),
                                      "end_time": seconds_value(rng, end)})
                else:
                    responses.append({"content": sentence(rng), "time": seconds_value(rng, start)})
            record = {"video_name": Path(name).stem, "video_path": name if rng.random() > 0.01 else "missing.mp4",
                      "task_type": rng.choice(["event_grounding", "narration", "qa"]), "source": "bench",
                      "question": questions, "response": responses}
            out.write(("  " if index == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n")


def run_measured(command: list[str], log: Path) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (bytes) of the command's whole process tree, and its first output line.
    Its output goes to files: both converters print a line per dropped record, more than a pipe holds."""
    start = time.perf_counter()
    with log.with_suffix(".out").open("w") as out, log.with_suffix(".err").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)
    wall = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"{command[0]} failed ({process.returncode}), see {log.with_suffix('.err')}")
    return wall, peak, log.with_suffix(".out").read_text().strip()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--reference", type=Path, default=ROOT / "bench/_work/convert_streaming_video.py")
    parser.add_argument("--work", type=Path, default=ROOT / "bench/_work/convert_reference")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if not args.reference.exists():
        sys.exit(f"{args.reference} not found: save scripts/convert_streaming_video.py from "
                 "https://github.com/maifoundations/Streamo there (see this file's docstring)")

    videos_dir = args.work / "videos"
    videos = make_videos(videos_dir, args.videos, args.seed)
    raw = args.work / f"raw_{args.records}.json"
    make_raw(raw, videos, args.records, args.seed)
    reference_out, ours_out = args.work / "reference.json", args.work / "ours.json"

    ref_wall, ref_peak, _ = run_measured([sys.executable, str(args.reference), "to-stream", "-i", str(raw),
                                          "-o", str(reference_out), "--video-prefix", str(videos_dir)],
                                         args.work / "reference_log")
    streamo = str(Path(sys.executable).parent / "streamo")
    ours_out.unlink(missing_ok=True)  # the previous run's output: the command never replaces a file unasked
    our_wall, our_peak, ours = run_measured([streamo, "convert", "raw-to-stream", str(raw), "--out", str(ours_out),
                                             "--video-root", str(videos_dir)], args.work / "ours_log")
    identical = sha256(reference_out) == sha256(ours_out)
    size = reference_out.stat().st_size
    mib = 1 << 20
    print(f"records: {args.records:,} over {args.videos} videos; raw {raw.stat().st_size / mib:.0f} MiB, "
          f"output {size / mib:.0f} MiB; ours: {ours}")
    print("| converter | wall time | peak RSS (process tree) |")
    print("|---|---|---|")
    print(f"| reference (`to-stream`, 8 threads) | {ref_wall:.1f} s | {ref_peak / mib:,.0f} MiB |")
    print(f"| `streamo convert raw-to-stream` | {our_wall:.1f} s | {our_peak / mib:,.0f} MiB |")
    print(f"speed-up {ref_wall / our_wall:.1f}x, memory {our_peak / ref_peak:.2f}x of the reference; "
          f"outputs byte-identical: {identical}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
