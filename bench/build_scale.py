"""The full-size mixture build from metadata alone: wall time, samples per second and peak memory at
10%, 50% and 100% of the 465K-sample corpus.

Usage: python bench/build_scale.py [--fractions 0.1 0.5 1.0] [--num-cpus 2]

For each fraction it writes synthetic annotation files in the sources' real published formats
(ActivityNet Captions, Charades-STA with the Charades CSV, QVHighlights, YouCook2, COIN, DiDeMo with
a durations file) for enough videos to fill the config's quotas, writes a mixture config with the
quotas of `pipelines/streamo_instruct.yaml` scaled by the fraction, and runs `streamo build --config`
as a subprocess on a local Ray. Memory is the peak, over the run, of the summed proportional set size
(PSS: shared pages split between the processes that share them) of the build and every process it
starts (Ray's raylet, object store and workers), sampled every 0.25 s. After the build,
`datasets.load_dataset` loads the release once (timed separately). Results go to
bench/results/build_scale.json and to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "scale"
RESULTS = Path(__file__).parent / "results"

# Videos per source at 100%: enough candidates for every task's quota (see the module docstring).
FULL_VIDEOS = {"activitynet": 50_000, "charades": 30_000, "qvhighlights": 10_000, "youcook2": 10_000,
               "coin": 20_000, "didemo": 35_000}
WORDS = ("person", "dog", "ball", "kitchen", "opens", "closes", "pours", "cuts", "walks", "table", "door",
         "water", "red", "small", "quickly", "then", "car", "guitar", "plays", "jumps")


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 11))).capitalize() + "."


def spans(rng: random.Random, duration: float, count: int) -> list[list[float]]:
    out = []
    for _ in range(count):
        start = round(rng.uniform(0, duration * 0.8), 2)
        out.append([start, round(min(duration - 2, start + rng.uniform(2, duration * 0.3)), 2)])
    return sorted(out)


def write_sources(folder: Path, fraction: float, seed: int = 0) -> dict[str, dict[str, str]]:
    """Annotation files in each source's published layout; returns the config's source entries."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = {k: max(2, int(v * fraction)) for k, v in FULL_VIDEOS.items()}

    activitynet = {}
    for i in range(n["activitynet"]):
        duration = round(rng.uniform(60, 180), 2)
        stamps = spans(rng, duration, rng.randint(3, 5))
        activitynet[f"v_anet{i:07d}"] = {"duration": duration, "timestamps": stamps,
                                         "sentences": [sentence(rng) for _ in stamps]}
    (folder / "train.json").write_text(json.dumps(activitynet))

    with (folder / "charades_sta_train.txt").open("w") as sta, (folder / "Charades_v1_train.csv").open("w") as csv:
        csv.write("id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n")
        for i in range(n["charades"]):
            video, duration = f"CH{i:06d}", round(rng.uniform(20, 40), 2)
            csv.write(f"{video},S{i},Kitchen,6,7,Yes,\"a script\",cup,\"a description\",c001 0.0 1.0,{duration}\n")
            for start, end in spans(rng, duration, 4):
                sta.write(f"{video} {start:.1f} {end:.1f}##{sentence(rng).lower()}\n")

    with (folder / "highlight_train_release.jsonl").open("w") as qvh:
        for i in range(n["qvhighlights"]):
            windows = [[int(a) // 2 * 2, int(b) // 2 * 2 + 2] for a, b in spans(rng, 148, rng.randint(1, 2))]
            qvh.write(json.dumps({"qid": i, "query": sentence(rng), "duration": 150, "vid": f"qvh{i:06d}_60.0_210.0",
                                  "relevant_windows": windows, "relevant_clip_ids": [0],
                                  "saliency_scores": [[2, 3, 4]]}) + "\n")

    database = {}
    for i in range(n["youcook2"]):
        duration = round(rng.uniform(200, 400), 2)
        database[f"yc{i:07d}"] = {"duration": duration, "subset": "training", "recipe_type": "101",
                                  "annotations": [{"segment": s, "id": k, "sentence": sentence(rng).lower()}
                                                  for k, s in enumerate(spans(rng, duration, 8))]}
    (folder / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": database}))

    database = {}
    for i in range(n["coin"]):
        duration = round(rng.uniform(90, 240), 2)
        database[f"coin{i:07d}"] = {"recipe_type": 1, "class": "Task", "subset": "training", "duration": duration,
                                    "annotation": [{"id": str(k), "segment": s, "label": sentence(rng).lower()}
                                                   for k, s in enumerate(spans(rng, duration, 4))]}
    (folder / "COIN.json").write_text(json.dumps({"database": database}))

    didemo, durations = [], {}
    for i in range(n["didemo"]):
        video = f"{i:08d}@N00_{i}.mov"
        durations[video] = 30.0
        for _ in range(4):
            first = rng.randint(0, 5)
            last = min(5, first + rng.randint(0, 2))
            didemo.append({"video": video, "times": [[first, last]] * 3 + [[first, min(5, last + 1)]],
                           "description": sentence(rng).lower(), "annotation_id": len(didemo)})
    (folder / "train_data.json").write_text(json.dumps(didemo))
    (folder / "didemo_durations.json").write_text(json.dumps(durations))

    return {
        "activitynet": {"recipe": "activitynet_captions", "annotations": "train.json"},
        "charades": {"recipe": "charades_sta", "annotations": "charades_sta_train.txt",
                     "videos": "Charades_v1_train.csv"},
        "qvhighlights": {"recipe": "qvhighlights", "annotations": "highlight_train_release.jsonl"},
        "youcook2": {"recipe": "youcook2", "annotations": "youcookii_annotations_trainval.json"},
        "coin": {"recipe": "coin", "annotations": "COIN.json"},
        "didemo": {"recipe": "didemo", "annotations": "train_data.json", "videos": "didemo_durations.json"},
    }


def write_config(folder: Path, fraction: float, sources: dict[str, dict[str, str]]) -> Path:
    reference = yaml.safe_load((ROOT / "pipelines" / "streamo_instruct.yaml").read_text())
    config = {key: value for key, value in reference.items() if key not in ("sources", "tasks")}
    config["name"] = f"scale-{fraction:g}"
    config["sources"] = [{"name": name, **{k: f"annotations/{v}" if k in ("annotations", "videos") else v
                                           for k, v in entry.items()}} for name, entry in sources.items()]
    config["tasks"] = {task: {**entry, "quota": int(entry["quota"] * fraction)}
                       for task, entry in reference["tasks"].items()}
    path = folder / "mixture.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tree_pss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_full_info().pss
    return total


def run_build(config: Path, work: Path, release: Path, num_cpus: int) -> tuple[float, int, str]:
    command = [sys.executable, "-m", "streamo_data.cli", "build", str(work), "--config", str(config), "--out",
               str(release), "--num-cpus", str(num_cpus)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**__import__("os").environ, "COLUMNS": "120"})
    peak = [0]
    watcher = psutil.Process(process.pid)

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_pss(watcher))
            time.sleep(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = process.communicate()
    elapsed = time.perf_counter() - start
    thread.join()
    if process.returncode:
        raise RuntimeError(f"build failed ({process.returncode}):\n{output}")
    return elapsed, peak[0], output


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.5, 1.0])
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    rows = []
    for fraction in args.fractions:
        folder = WORK / f"f{fraction:g}"
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        config = write_config(folder, fraction, write_sources(folder / "annotations", fraction))
        generated = time.perf_counter() - started
        release = folder / "release"
        elapsed, peak, output = run_build(config, folder / "work", release, args.num_cpus)
        manifest = json.loads((release / "manifest.json").read_text())

        started = time.perf_counter()
        from datasets import load_dataset

        loaded = load_dataset(str(release), cache_dir=str(folder / "hf-cache"))
        load_s = time.perf_counter() - started
        loaded_rows = sum(split.num_rows for split in loaded.values())
        assert loaded_rows == manifest["num_samples"], (loaded_rows, manifest["num_samples"])
        size = sum(p.stat().st_size for p in (release / "data").rglob("*.parquet"))
        rows.append({"fraction": fraction, "samples": manifest["num_samples"],
                     "target": sum(manifest["targets"].values()), "build_s": elapsed,
                     "samples_per_s": manifest["num_samples"] / elapsed, "peak_pss_gib": peak / 2**30,
                     "release_mib": size / 2**20, "load_dataset_s": load_s, "annotations_s": generated})
        print(output.strip().splitlines()[-12:], file=sys.stderr)
        shutil.rmtree(folder / "hf-cache", ignore_errors=True)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "build_scale.json").write_text(json.dumps(rows, indent=2))
    print("| size | samples (target) | build wall time | samples/s | peak memory (PSS) | release on disk |"
          " load_dataset |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['fraction']:.0%} | {row['samples']:,} ({row['target']:,}) | {row['build_s']:.0f} s |"
              f" {row['samples_per_s']:,.0f} | {row['peak_pss_gib']:.2f} GiB | {row['release_mib']:.0f} MiB |"
              f" {row['load_dataset_s']:.0f} s |")


if __name__ == "__main__":
    main()
