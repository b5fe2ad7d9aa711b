"""Composition of a release: samples per task and split, the share of each state, responses per sample,
video lengths, and each of them beside the paper's figure (:mod:`streamo_data.corpus.fidelity`).

The share of states is what the loss's alpha weights are computed from, and the first number a
reviewer asks for: Silence dominates, and by how much is a property of the corpus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streamo_data.core.align import State
from streamo_data.core.schema import ReleaseManifest
from streamo_data.corpus.fidelity import fidelity, length_histogram
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import read_table


def release_stats(release_dir: AnyPath) -> dict[str, Any]:
    return manifest_stats(release_dir, read_manifest(release_dir))


STATS_COLUMNS = ["states", "responses", "source", "video_id", "duration_s"]


class CompositionTally:
    """The counts that a release's stats are made of, added table by table: from the shards read back
    (:func:`manifest_stats`), or from the tables as a build hands them to the shard writer, so a build
    need not read its release back to describe it."""

    def __init__(self) -> None:
        self.samples: dict[str, Counter[str]] = defaultdict(Counter)
        self.states: dict[str, Counter[str]] = defaultdict(Counter)
        self.responses: Counter[str] = Counter()
        self.by_source: dict[str, Counter[str]] = defaultdict(Counter)
        self.durations: dict[str, float] = {}

    def add(self, task: str, split: str, table: pa.Table) -> None:
        """Count the rows of one task and split (a table with at least :data:`STATS_COLUMNS`)."""
        self.samples[task][split] += table.num_rows
        # one length per distinct video: the paper's histogram counts videos, not samples
        self.durations.update(zip(table["video_id"].to_pylist(), table["duration_s"].to_pylist(), strict=True))
        for entry in pc.value_counts(table["source"]).to_pylist():
            self.by_source[task][entry["values"]] += entry["counts"]
        for entry in pc.value_counts(pc.list_flatten(table["states"])).to_pylist():
            self.states[task][entry["values"]] += entry["counts"]
        self.responses[task] += int(pc.sum(pc.list_value_length(table["responses"])).as_py() or 0)

    def stats(self, manifest: ReleaseManifest) -> dict[str, Any]:
        """The release's composition (per task and overall) beside the paper's figures."""
        samples, states, responses = self.samples, self.states, self.responses
        by_source, durations = self.by_source, self.durations

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


def manifest_stats(release_dir: AnyPath, manifest: ReleaseManifest) -> dict[str, Any]:
    """The composition of the shards that ``manifest`` lists (also before the manifest is written)."""
    tally = CompositionTally()
    for shard in manifest.shards:
        tally.add(shard.task, shard.split, read_table(release_dir / shard.path, columns=STATS_COLUMNS))
    return tally.stats(manifest)
