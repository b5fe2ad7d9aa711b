"""Composition of a release: samples per task and split, the share of each state, responses per sample,
video lengths, and each of them beside the paper's figure (:mod:`streamo_data.corpus.fidelity`).

The share of states is what the loss's alpha weights are computed from, and the first number a
reviewer asks for: Silence dominates, and by how much is a property of the corpus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow.compute as pc

from streamo_data.core.align import State
from streamo_data.core.schema import ReleaseManifest
from streamo_data.corpus.fidelity import fidelity, length_histogram
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import read_table


def release_stats(release_dir: AnyPath) -> dict[str, Any]:
    return manifest_stats(release_dir, read_manifest(release_dir))


def manifest_stats(release_dir: AnyPath, manifest: ReleaseManifest) -> dict[str, Any]:
    """The composition of the shards that ``manifest`` lists (also before the manifest is written)."""
    samples: dict[str, Counter[str]] = defaultdict(Counter)
    states: dict[str, Counter[str]] = defaultdict(Counter)
    responses: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, float] = {}
    for shard in manifest.shards:
        table = read_table(release_dir / shard.path, columns=["states", "responses", "source", "video_id",
                                                              "duration_s"])
        samples[shard.task][shard.split] += table.num_rows
        # one length per distinct video: the paper's histogram counts videos, not samples
        durations.update(zip(table["video_id"].to_pylist(), table["duration_s"].to_pylist(), strict=True))
        for entry in pc.value_counts(table["source"]).to_pylist():
            by_source[shard.task][entry["values"]] += entry["counts"]
        flat = pc.value_counts(pc.list_flatten(table["states"]))
        for entry in flat.to_pylist():
            states[shard.task][entry["values"]] += entry["counts"]
        responses[shard.task] += int(pc.sum(pc.list_value_length(table["responses"])).as_py() or 0)

    def shares(counter: Counter[str]) -> dict[str, float]:
        total = sum(counter.values()) or 1
        return {s.value: round(counter[s.value] / total, 4) for s in State}

    all_states: Counter[str] = sum(states.values(), Counter())
    per_task: dict[str, dict[str, Any]] = {
        task: {
            "train": samples[task]["train"], "validation": samples[task]["validation"],
            "samples": sum(samples[task].values()),
            "state_share": shares(states[task]),
            "responses_per_sample": round(responses[task] / max(1, sum(samples[task].values())), 3),
            "target": manifest.targets.get(task),
            "sources": dict(sorted(by_source[task].items())),
        }
        for task in sorted(set(samples) | set(manifest.targets))
    }
    total = sum(v["samples"] for v in per_task.values())
    lengths = length_histogram(durations.values())
    return {
        "name": manifest.name, "samples": total, "target": sum(manifest.targets.values()) or None,
        "frames": sum(all_states.values()), "videos": len(durations), "tasks": per_task,
        "state_share": shares(all_states),
        "responses_per_sample": round(sum(responses.values()) / max(1, total), 3),
        "video_length": lengths,
        "fidelity": fidelity({task: entry["samples"] for task, entry in per_task.items()}, all_states, lengths,
                             sum(responses.values()), total, by="task"),
    }
