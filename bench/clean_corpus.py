"""What official splits and decontamination take out of the public mixture, and what the check costs.

Usage: python bench/clean_corpus.py [--fraction 1.0] [--num-cpus 2]

The synthetic sources (`streamo_data/sources/sample_sources.py`, in the real files' published formats) are
written with their held-out subsets in the real files' proportions: COIN.json 2,797 testing beside 9,030
training videos, YouCook2's trainval file 457 validation beside 1,333 training. An OVO-Bench file in the
published `ovo_bench_new.json` format is planted with OVO-Bench's own per-dataset video counts, drawn the
way OVO-Bench drew them: 55 COIN videos from COIN `testing`, 50 YouCook2 videos from `validation`, and 36
Charades videos (OVO-Bench's STAR tasks) from the Charades-STA training file. Three builds of the
`pipelines/public_annotations.yaml` quotas, each a `streamo build --config` subprocess on a local Ray:

1. `all subsets`: COIN and YouCook2 with `subset: [all]`, the old behaviour (every subset read);
2. `default`: the recipes' defaults, training subsets only;
3. `default + decontaminate`: the same with `decontaminate: [ovo_bench_new.json]`.

Per source: events read into the build and samples released, each build against the one before; benchmark
videos left in the release; wall time of 3 against 2 (the cost of the check). Results to
bench/results/clean_corpus.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from build_scale import run_build  # noqa: E402  (a benchmark beside this one: one build runner)

from streamo_data.core.video_identity import video_stem  # noqa: E402
from streamo_data.sources.sample_sources import write_mixture  # noqa: E402
from streamo_data.store.manifest import read_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "clean"
RESULTS = Path(__file__).parent / "results"
OVO_COUNTS = {"COIN": 55, "youcook2": 50, "star": 36}  # OVO-Bench's videos per dataset (ovo_bench_new.json)


def plant_ovo_bench(folder: Path, seed: int = 0) -> Path:
    """An ovo_bench_new.json whose COIN/YouCook2 videos are held-out ones and whose STAR ones are Charades."""
    rng = random.Random(seed)
    annotations = folder / "annotations"
    coin = json.loads((annotations / "COIN.json").read_text())["database"]
    youcook2 = json.loads((annotations / "youcookii_annotations_trainval.json").read_text())["database"]
    charades = sorted({line.split()[0] for line in (annotations / "charades_sta_train.txt").read_text().splitlines()})
    picks = {
        "COIN": rng.sample(sorted(v for v, e in coin.items() if e["subset"] == "testing"), OVO_COUNTS["COIN"]),
        "youcook2": rng.sample(sorted(v for v, e in youcook2.items() if e["subset"] == "validation"),
                               OVO_COUNTS["youcook2"]),
        "star": rng.sample(charades, OVO_COUNTS["star"]),
    }
    tasks = {"COIN": "ASI", "youcook2": "REC", "star": "HLD"}
    entries = [{"id": k, "task": tasks[dataset], "video": f"{dataset}/{video}.mp4", "realtime": 10,
                "question": "What happens?", "answer": "something", "options": ["a", "b", "c", "d"], "gt": 0}
               for k, (dataset, video) in enumerate((d, v) for d, videos in picks.items() for v in videos)]
    path = folder / "ovo_bench_new.json"
    path.write_text(json.dumps(entries))
    return path


def released(release: Path) -> tuple[Counter[str], set[str]]:
    samples: Counter[str] = Counter()
    videos: set[str] = set()
    for shard in read_manifest(release).shards:
        table = pq.read_table(release / shard.path, columns=["source", "video_path"])
        samples.update(table["source"].to_pylist())
        videos.update(video_stem(p) for p in table["video_path"].to_pylist())
    return samples, videos


def events_read(work: Path) -> dict[str, int]:
    return {folder.name: json.loads((folder / "recipe_report.json").read_text())["events"]
            for folder in sorted((work / "sources").iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    config = write_mixture(WORK, args.fraction, ROOT / "pipelines" / "public_annotations.yaml", held_out=True)
    benchmark = plant_ovo_bench(WORK)
    planted = {video_stem(e["video"]) for e in json.loads(benchmark.read_text())}
    base = yaml.safe_load(config.read_text())
    variants = {"all subsets": {"subset": ["all"]}, "default": {}, "default + decontaminate": {}}
    results: dict[str, dict[str, Any]] = {}
    for name, override in variants.items():
        raw = json.loads(json.dumps(base))
        for source in raw["sources"]:
            if source["name"] in ("coin", "youcook2"):
                source.pop("subset", None)
                source.update(override)
        if name.endswith("decontaminate"):
            raw["decontaminate"] = [str(benchmark)]
        path = WORK / f"{name.replace(' ', '_').replace('+', 'and')}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        work, release = WORK / f"work_{path.stem}", WORK / f"release_{path.stem}"
        wall, peak, _ = run_build(path, work, release, args.num_cpus)
        samples, videos = released(release)
        results[name] = {"wall_s": round(wall, 1), "peak_pss_gib": round(peak / 2**30, 2), "events": events_read(work),
                         "samples": dict(samples), "benchmark_videos_released": len(videos & planted)}
        print(f"{name}: {wall:.1f} s, {sum(samples.values())} samples, {len(videos & planted)} benchmark videos left",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clean_corpus.json").write_text(json.dumps({"fraction": args.fraction, **results}, indent=2))
    names = list(results)
    print("\n| source | " + " | ".join(f"events: {n}" for n in names) + " | "
          + " | ".join(f"samples: {n}" for n in names) + " |")
    print("|---" * (1 + 2 * len(names)) + "|")
    sources = sorted({s for r in results.values() for s in r["events"]})
    for source in sources:
        events = [r["events"].get(source, 0) for r in results.values()]
        samples = [r["samples"].get(source, 0) for r in results.values()]
        print(f"| {source} | " + " | ".join(f"{n:,}" for n in events) + " | " + " | ".join(f"{n:,}" for n in samples)
              + " |")
    ratio = results["default + decontaminate"]["wall_s"] / results["default"]["wall_s"]
    print("\nbenchmark videos left: " + ", ".join(f"{n} {r['benchmark_videos_released']}" for n, r in results.items()))
    print(f"wall time, decontaminated / default: {ratio:.2f}")


if __name__ == "__main__":
    main()
