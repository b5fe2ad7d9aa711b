"""Synthetic annotation files in the sources' published formats, for benchmarks and tests at any size.

Nothing here is a real annotation: sentences are drawn from a small vocabulary and times at random
(seeded). What matters is that every file has exactly the layout its recipe reads, so a full-size
build can be measured, and a crash-and-resume tested, without the real (licensed) files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

# Videos per source at 100%: enough candidates for every task's quota (see the module docstring).
FULL_VIDEOS = {"activitynet": 50_000, "charades": 30_000, "qvhighlights": 10_000, "youcook2": 10_000,
               "coin": 20_000, "didemo": 35_000}
# With ``held_out``, COIN and YouCook2 (the files that mix subsets) also hold their held-out videos, in the
# real files' proportions: COIN.json 2,797 testing beside 9,030 training videos; YouCook2's trainval file 457
# validation beside 1,333 training.
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


def write_sources(folder: Path, fraction: float, seed: int = 0, held_out: bool = False) -> dict[str, dict[str, str]]:
    """Annotation files in each source's published layout; returns the config's source entries. With
    ``held_out``, the files that mix subsets (COIN, YouCook2) hold their held-out videos too, in the real
    files' shares, on top of the training ones."""
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
    for i in range(n["youcook2"] + (round(n["youcook2"] * 457 / 1333) if held_out else 0)):
        duration = round(rng.uniform(200, 400), 2)
        subset = "validation" if i >= n["youcook2"] else "training"
        database[f"yc{i:07d}"] = {"duration": duration, "subset": subset, "recipe_type": "101",
                                  "annotations": [{"segment": s, "id": k, "sentence": sentence(rng).lower()}
                                                  for k, s in enumerate(spans(rng, duration, 8))]}
    (folder / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": database}))

    database = {}
    for i in range(n["coin"] + (round(n["coin"] * 2797 / 9030) if held_out else 0)):
        duration = round(rng.uniform(90, 240), 2)
        subset = "testing" if i >= n["coin"] else "training"
        database[f"coin{i:07d}"] = {"recipe_type": 1, "class": "Task", "subset": subset, "duration": duration,
                                    "annotation": [{"id": str(k), "segment": s, "label": sentence(rng).lower()}
                                                   for k, s in enumerate(spans(rng, duration, 4))]}
    (folder / "COIN.json").write_text(json.dumps({"database": database}))

    didemo: list[dict[str, Any]] = []
    durations: dict[str, float] = {}
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


def write_mixture(folder: Path, fraction: float, reference: Path, seed: int = 0, held_out: bool = False,
                  **overrides: object) -> Path:
    """Synthetic sources under ``folder/annotations`` and a mixture config beside them whose quotas are
    the reference config's, scaled by ``fraction``; ``overrides`` replace top-level config keys."""
    sources = write_sources(folder / "annotations", fraction, seed, held_out)
    config = dict(yaml.safe_load(reference.read_text()))
    config["name"] = f"synthetic-{fraction:g}"
    config["sources"] = [
        {"name": name, **{key: f"annotations/{value}" if key in ("annotations", "videos") else value
                          for key, value in entry.items()}}
        for name, entry in sources.items()
    ]
    config["tasks"] = {task: {**entry, "quota": int(entry["quota"] * fraction)}
                       for task, entry in config["tasks"].items()}
    config.update(overrides)
    path = folder / "mixture.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
