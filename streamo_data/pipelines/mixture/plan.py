"""Step 2 of the mixture, the plan: which candidates the build makes, decided before any is made.

A pass over every video (in batches, on Ray) lists each task's candidates by a 64-bit hash of
``(seed, candidate key)``; a task's quota takes the candidates with the smallest hashes, so the choice is
exact, seeded, and independent of order and of parallelism. Validation videos are chosen the same way (a
hash rank of video ids), whole videos at a time. The plan is saved in ``plan.json``; the driver holds 8
bytes a candidate while planning.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from streamo_data.core.schema import stable_id
from streamo_data.corpus.split import validation_videos
from streamo_data.corpus.tasks import BUILDERS
from streamo_data.pipelines.mixture.batches import allowed_events, visible_batch
from streamo_data.pipelines.mixture.config import MixtureConfig
from streamo_data.runtime.batch_scope import batch_scope
from streamo_data.runtime.runner import Executor, run_stage, worker_node
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, location
from streamo_data.store.tables import read_table


class BatchSpec(BaseModel):
    """One batch of videos for a pass over the corpus, as the runner passes it to :func:`plan_item` (plain
    JSON): the video id range, where the sources are, each task's ``sources:`` (None: all), the seed, and
    the plan's stamp (so a worker downloads a source on an object store once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch: int
    low: str
    high: str
    source_dirs: list[str]
    tasks: dict[str, list[str] | None]
    seed: int
    stamp: str | None = None
    excluded: dict[str, list[str]] = {}  # the batch's benchmark videos (video id -> benchmarks): never used

    @classmethod
    def of(cls, config: MixtureConfig, batch: int, low: str, high: str, source_dirs: list[str],
           stamp: str, excluded: dict[str, list[str]] | None = None) -> BatchSpec:
        return cls(batch=batch, low=low, high=high, source_dirs=source_dirs, seed=config.seed, stamp=stamp,
                   tasks={task: quota.sources for task, quota in config.tasks.items()},
                   excluded={v: names for v, names in (excluded or {}).items() if low <= v <= high})


def candidate_hash(seed: int, key: str) -> int:
    return int(stable_id(seed, key), 16)


def plan_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    with batch_scope():  # see streamo_data.runtime.batch_scope
        return _plan_item(item)


def _plan_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Per task, the hash of every candidate of one batch and the rank hash of its video; and per benchmark
    and source, the candidates its videos would have given (they are not candidates)."""
    spec = BatchSpec.model_validate(item)
    found: dict[str, dict[str, list[int]]] = {}
    removed: dict[str, Counter[str]] = defaultdict(Counter)
    for video, events in visible_batch(spec.source_dirs, spec.low, spec.high, spec.stamp)[0]:
        if video.video_id in spec.excluded:
            for task, sources in spec.tasks.items():
                for candidate in BUILDERS[task]().candidates(video, allowed_events(events, sources)):
                    for benchmark in spec.excluded[video.video_id]:
                        removed[benchmark][candidate.source] += 1
            continue
        rank = candidate_hash(spec.seed, video.video_id)
        for task, sources in spec.tasks.items():
            entry = found.setdefault(task, {"hashes": [], "videos": []})
            for candidate in BUILDERS[task]().candidates(video, allowed_events(events, sources)):
                entry["hashes"].append(candidate_hash(spec.seed, candidate.key))
                entry["videos"].append(rank)
    return [{"batch": spec.batch, "tasks": found, "node": worker_node(),
             "removed": {benchmark: dict(counts) for benchmark, counts in removed.items()}}]


@dataclass
class Plan:
    """What the build makes: per task, the largest candidate hash it takes; and the validation videos."""

    stamp: str
    batches: list[tuple[str, str]]
    thresholds: dict[str, int]
    candidates: dict[str, int]
    held_out: list[str]
    source_dirs: list[str]
    nodes: dict[str, int] = field(default_factory=dict)  # batches planned per Ray node
    excluded: dict[str, list[str]] = field(default_factory=dict)  # benchmark videos: video id -> benchmarks
    removed: dict[str, dict[str, int]] = field(default_factory=dict)  # benchmark -> source -> candidates
    # per task, the videos (sorted ids) that a taken candidate comes from: the build lists no other
    # video's candidates for that task. None (a plan saved without it): every video is listed.
    chosen: dict[str, list[str]] | None = None

    def save(self, path: AnyPath) -> None:
        write_text_atomic(path, json.dumps(self.__dict__, indent=1))

    @classmethod
    def load(cls, path: AnyPath) -> Plan:
        data = json.loads(path.read_text())
        data["batches"] = [tuple(b) for b in data["batches"]]
        return cls(**data)


def _all_video_ids(source_dirs: list[str]) -> list[str]:
    ids: set[str] = set()
    for folder in source_dirs:
        ids.update(read_table(location(folder) / "videos.parquet", columns=["video_id"])["video_id"].to_pylist())
    return sorted(ids)


def make_plan(config: MixtureConfig, source_dirs: list[str], stamp: str, executor: Executor,
              excluded: dict[str, list[str]] | None = None) -> Plan:
    """Quotas by candidate hash, then the split over the videos that the chosen candidates come from,
    by the same rule as a work-dir release (:func:`streamo_data.corpus.split.validation_videos`): whole
    videos, each task with samples in both splits where it has two or more videos."""
    video_ids = _all_video_ids(source_dirs)
    step = config.videos_per_batch
    batches = [(video_ids[i], video_ids[min(i + step, len(video_ids)) - 1]) for i in range(0, len(video_ids), step)]
    excluded = excluded or {}
    specs = [BatchSpec.of(config, k, low, high, source_dirs, stamp, excluded) for k, (low, high) in enumerate(batches)]
    # 16 bytes a candidate (its hash and its video's), not Python ints
    hashes: dict[str, list[np.ndarray]] = defaultdict(list)
    videos: dict[str, list[np.ndarray]] = defaultdict(list)
    nodes: Counter[str] = Counter()
    removed: dict[str, Counter[str]] = defaultdict(Counter)
    for result in run_stage(plan_item, [spec.model_dump(mode="json") for spec in specs], executor, "plan"):
        nodes[result["node"]] += 1
        for benchmark, counts in result["removed"].items():
            removed[benchmark].update(counts)
        for task, entry in result["tasks"].items():
            hashes[task].append(np.array(entry["hashes"], dtype=np.uint64))
            videos[task].append(np.array(entry["videos"], dtype=np.uint64))
    id_of_rank = {candidate_hash(config.seed, v): v for v in video_ids}
    thresholds: dict[str, int] = {}
    candidates: dict[str, int] = {}
    chosen_videos: dict[str, set[str]] = {}
    for task, quota in config.tasks.items():
        found = np.concatenate(hashes[task]) if hashes[task] else np.zeros(0, np.uint64)
        candidates[task] = int(found.size)
        if quota.quota == 0 or not found.size:
            thresholds[task] = -1  # hashes are never negative: nothing is taken
            chosen_videos[task] = set()
            continue
        take = min(quota.quota, found.size)  # the take-th smallest hash is the last one taken
        thresholds[task] = int(np.partition(found, take - 1)[take - 1])
        ranks = np.unique(np.concatenate(videos[task])[found <= np.uint64(thresholds[task])])
        chosen_videos[task] = {id_of_rank[int(r)] for r in ranks}
    held_out = validation_videos(chosen_videos, config.validation_fraction, config.seed)
    return Plan(stamp=stamp, batches=batches, thresholds=thresholds, candidates=candidates,
                held_out=sorted(held_out), source_dirs=source_dirs, nodes=dict(nodes), excluded=excluded,
                chosen={task: sorted(ids) for task, ids in chosen_videos.items()},
                removed={benchmark: dict(sorted(counts.items())) for benchmark, counts in sorted(removed.items())})
