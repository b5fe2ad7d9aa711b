"""The full-size mixture build from metadata alone: wall time, samples per second and peak memory at
10%, 50% and 100% of the 465K-sample corpus.

Usage: python bench/build_scale.py [--fractions 0.1 0.5 1.0] [--num-cpus 2]

For each fraction it writes synthetic annotation files in the sources' real published formats
(ActivityNet Captions, Charades-STA with the Charades CSV, QVHighlights, YouCook2, COIN, DiDeMo with
a durations file) for enough videos to fill the config's quotas, writes a mixture config with the
quotas of `pipelines/public_annotations.yaml` (the no-LLM mixture) scaled by the fraction, and runs
`streamo build --config` as a subprocess on a local Ray. Memory is the peak, over the run, of the summed
proportional set size (PSS: shared pages split between the processes that share them) of the build and every process it
starts (Ray's raylet, object store and workers), sampled every 0.25 s. After the build,
`datasets.load_dataset` loads the release once (timed separately). Results go to
bench/results/build_scale.json and to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from streamo_data.sources.sample_sources import write_mixture

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "scale"
RESULTS = Path(__file__).parent / "results"

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
        config = write_mixture(folder, fraction, ROOT / "pipelines" / "public_annotations.yaml")
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
