"""The paper's claim in small: on a release where Silence dominates, focal + alpha versus plain CE.

Usage: python bench/focal_ablation.py [--videos 60] [--epochs 30] [--seeds 0 1 2]

Builds a release from synthetic videos whose events are known (temporal grounding and dense
captioning, 1 fps; most frames are silence), then trains the default baseline twice per seed, with
the same seed, data order and number of steps: once with plain cross-entropy, once with the focal
state loss (gamma 2, alpha from the batch, as the reference). Reports validation Response-state
recall, precision and F1 and the response timing error, per seed and averaged; and, for the default
baseline, training steps per second and the peak resident memory of the training process.
Results go to bench/results/focal_ablation.json and to stdout as Markdown.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import time
from pathlib import Path

from streamo_data.release.stats import release_stats
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_data import make_synthetic_video, write_truth
from streamo_data.stages.annotate_offline import run_annotate_offline
from streamo_data.stages.build import run_build
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.workdir import SAMPLES

WORK = Path(__file__).parent / "_work" / "ablation"
RESULTS = Path(__file__).parent / "results"


def make_release(videos: int) -> Path:
    release = WORK / "release"
    if (release / "manifest.json").exists():
        return release
    folder = WORK / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(videos):
        path = folder / f"v{k:03d}.mp4"
        duration = 40.0 + 10 * (k % 3)
        write_truth(path, make_synthetic_video(path, seed=1000 + k, duration_s=duration, num_events=3 + k % 2),
                    duration)
    local = Executor(kind="local")
    run_ingest(folder, WORK / "work", 1.0, local)
    run_annotate_offline(WORK / "work", local)
    run_build(WORK / "work", ["temporal_grounding", "dense_captioning"], 0, local)
    write_release(WORK / "work" / SAMPLES, release, validation_fraction=0.25, name="ablation")
    return release


def run_one(job: tuple[str, int, int]) -> dict:
    """One training run in a fresh process, so its peak memory is its own."""
    from streamo_data.train.loop import TrainConfig, train

    loss, seed, epochs = job
    config = TrainConfig(epochs=epochs, loss=loss, seed=seed, threads=1)
    started = time.perf_counter()
    final = train(WORK / "release", WORK / f"run-{loss}-{seed}", WORK / "videos", config, WORK / "features",
                  cache_dir=str(WORK / "hf-cache"))
    elapsed = time.perf_counter() - started
    history = [json.loads(line) for line in (WORK / f"run-{loss}-{seed}" / "metrics.jsonl").read_text().splitlines()]
    response = final["validation"]["states"]["response"]
    return {"loss": loss, "seed": seed, "epochs": epochs, "steps": final["step"], "recall": response["recall"],
            "precision": response["precision"], "f1": response["f1"],
            "standby_f1": final["validation"]["states"]["standby"]["f1"],
            "timing": final["validation"]["timing"], "wall_s": elapsed,
            "steps_per_s": statistics.median(m["steps_per_s"] for m in history),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    release = make_release(args.videos)
    stats = release_stats(release)
    for run in WORK.glob("run-*"):
        for item in sorted(run.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        run.rmdir()

    jobs = [(loss, seed, args.epochs) for seed in args.seeds for loss in ("ce", "focal")]
    context = multiprocessing.get_context("spawn")
    results = []
    for job in jobs:  # one at a time: steps/s and memory are measured without a neighbour
        with context.Pool(1) as pool:
            results.append(pool.apply(run_one, (job,)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "focal_ablation.json").write_text(json.dumps({"release": stats, "runs": results}, indent=2))

    share = stats["state_share"]
    print(f"release: {stats['samples']} samples, {stats['frames']} frames; silence {share['silence']:.1%},"
          f" standby {share['standby']:.1%}, response {share['response']:.1%}")
    print("| loss | seed | steps | Response recall | Response precision | Response F1 | Standby F1 |"
          " timing mean abs (frames) | within 1 frame | timing F1 (1 frame) | missed | false alarms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        t = r["timing"]
        print(f"| {r['loss']} | {r['seed']} | {r['steps']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['f1']:.3f} |"
              f" {r['standby_f1']:.3f} | {t['mean_abs_frames']:.2f} | {t['within_1_frame']:.1%} |"
              f" {t['f1_within_1']:.3f} | {t['missed']}/{t['responses']} | {t['false_alarms']}/{t['predicted']} |")
    for loss in ("ce", "focal"):
        runs = [r for r in results if r["loss"] == loss]
        mean = {key: statistics.mean(r[key] for r in runs) for key in ("recall", "precision", "f1", "standby_f1")}
        timing = statistics.mean(r["timing"]["mean_abs_frames"] for r in runs)
        print(f"| **{loss} (mean)** | | | {mean['recall']:.3f} | {mean['precision']:.3f} | {mean['f1']:.3f} |"
              f" {mean['standby_f1']:.3f} | {timing:.2f} | | | | |")
    speed = statistics.median(r["steps_per_s"] for r in results)
    memory = max(r["peak_rss_mib"] for r in results)
    print(f"\ndefault baseline: {speed:.1f} training steps/s (median over runs, batch 8, 1 thread), peak RSS"
          f" {memory:.0f} MiB")


if __name__ == "__main__":
    main()
