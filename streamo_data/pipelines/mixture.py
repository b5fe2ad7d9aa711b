"""The full Streamo-Instruct mixture: sources -> recipes -> plan -> parts -> release, on Ray, resumable.

1. **recipes**: each source's annotation file becomes ``WORK/sources/<name>/{events,videos}.parquet``
   (skipped when its inputs are unchanged).
2. **plan**: a pass over every video (in batches, on Ray) lists each task's candidates by a 64-bit hash
   of ``(seed, candidate key)``; a task's quota takes the candidates with the smallest hashes, so the
   choice is exact, seeded, and independent of order and of parallelism. Validation videos are chosen
   the same way (a hash rank of video ids), whole videos at a time. The plan is saved in ``plan.json``.
3. **parts**: a second pass builds the chosen candidates, batch by batch, each batch into its own
   ``WORK/parts/part-NNNNNN.parquet`` (written atomically). A rerun skips batches already written, so a
   killed build resumes where it stopped and produces the same bytes.
4. **release**: the parts are streamed, in batch order, through the shard writer, deduplicated by
   sample id; then checksums, the manifest and the dataset card.

Memory stays flat as the corpus grows: workers hold one batch of videos; the driver holds the plan
(8 bytes a candidate while planning) and the set of sample ids seen (for deduplication).
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamo_data import __version__
from streamo_data.io import write_atomic, write_text_atomic
from streamo_data.pipelines.runner import Executor, run_stage
from streamo_data.reasons import reason_key
from streamo_data.recipes import RECIPES, run_recipe
from streamo_data.release import ShardWriter, publish, validation_videos
from streamo_data.schema import Event, ReleaseManifest, VideoRecord, stable_id
from streamo_data.tables import SAMPLE_FEATURES, from_row, to_row
from streamo_data.tasks import BUILDERS, NEVER_SEEN, task_rng
from streamo_data.tasks.base import visible_events

PART_SCHEMA = SAMPLE_FEATURES.arrow_schema.append(pa.field("split", pa.string()))


# ---- configuration -----------------------------------------------------------------------------------

class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    recipe: str
    annotations: Path
    videos: Path | None = None
    path_template: str = "{key}.mp4"

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str) -> str:
        if value not in RECIPES:
            raise ValueError(f"unknown recipe {value!r}; known: {', '.join(sorted(RECIPES))}")
        return value


class TaskQuota(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quota: int = Field(ge=0)
    sources: list[str] | None = Field(default=None, description="Only events of these sources (default: all).")


class MixtureConfig(BaseModel):
    """``pipelines/streamo_instruct.yaml``: what goes into the corpus and how much of each task."""

    model_config = ConfigDict(extra="forbid")

    name: str = "streamo-instruct"
    seed: int = 0
    fps: float = Field(default=1.0, gt=0)
    validation_fraction: float = Field(default=0.01, ge=0, lt=1)
    rows_per_shard: int = Field(default=50_000, gt=0)
    videos_per_batch: int = Field(default=1000, gt=0)
    sources: list[SourceConfig] = Field(min_length=1)
    tasks: dict[str, TaskQuota]

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: dict[str, TaskQuota]) -> dict[str, TaskQuota]:
        unknown = sorted(set(value) - set(BUILDERS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known: {sorted(BUILDERS)}")
        return value

    @classmethod
    def load(cls, path: Path) -> MixtureConfig:
        """Read the YAML; ``${VAR}`` in paths is expanded and relative paths are taken from the
        config file's folder, so one config serves any machine that sets the data root."""
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for source in raw.get("sources", []):
            for key in ("annotations", "videos"):
                if source.get(key):
                    expanded = Path(os.path.expandvars(str(source[key])))
                    source[key] = str(expanded if expanded.is_absolute() else (path.parent / expanded).resolve())
        config = cls.model_validate(raw)
        for source in config.sources:
            for label, file in (("annotations", source.annotations), ("videos", source.videos)):
                if file is not None and not file.exists():
                    raise ValueError(f"source {source.name}: {label} {file} does not exist")
        names = [s.name for s in config.sources]
        if len(set(names)) != len(names):
            raise ValueError("two sources share a name")
        for task, quota in config.tasks.items():
            missing = sorted(set(quota.sources or []) - set(names))
            if missing:
                raise ValueError(f"task {task} names sources that the config does not declare: {missing}")
        return config

    @property
    def targets(self) -> dict[str, int]:
        return {task: quota.quota for task, quota in self.tasks.items()}


def _file_stamp(path: Path | None) -> list[Any]:
    if path is None:
        return []
    if path.is_dir():
        return [str(path)]
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


# ---- stage 1: recipes ----------------------------------------------------------------------------------

def recipe_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    source = SourceConfig.model_validate(item["source"])
    report = run_recipe(RECIPES[source.recipe](), source.annotations, Path(item["out"]), videos=source.videos,
                        fps=item["fps"], path_template=source.path_template, source=source.name)
    write_text_atomic(Path(item["out"]) / "stamp.json", json.dumps(item["stamp"]))
    return [report.as_dict()]


def run_sources(config: MixtureConfig, work_dir: Path, executor: Executor) -> dict[str, dict[str, Any]]:
    """Run each source's recipe unless its inputs are unchanged since the last run."""
    reports: dict[str, dict[str, Any]] = {}
    todo = []
    for source in config.sources:
        out = work_dir / "sources" / source.name
        stamp = {"recipe": source.recipe, "annotations": _file_stamp(source.annotations),
                 "videos": _file_stamp(source.videos), "template": source.path_template, "fps": config.fps,
                 "version": __version__}
        stamp_path = out / "stamp.json"
        if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and (out / "events.parquet").exists():
            reports[source.name] = json.loads((out / "recipe_report.json").read_text())
            continue
        todo.append({"source": source.model_dump(mode="json"), "out": str(out), "fps": config.fps, "stamp": stamp})
    for report in run_stage(recipe_item, todo, executor, "recipes"):
        reports[report["recipe"]] = report
    return reports


# ---- reading one batch of videos from every source -----------------------------------------------------

def _in_range(path: Path, low: str, high: str) -> list[dict[str, Any]]:
    """Rows whose video_id lies in [low, high]; row-group statistics skip the rest of the file."""
    table = pq.read_table(path, filters=[("video_id", ">=", low), ("video_id", "<=", high)])
    return table.to_pylist()


def load_batch(source_dirs: list[str], low: str, high: str) -> list[tuple[VideoRecord, list[Event]]]:
    """Every video in [low, high] with the events of every source about it, in video id order (all of
    them; :func:`visible_batch` keeps those the stream shows)."""
    videos: dict[str, VideoRecord] = {}
    events: dict[str, list[Event]] = defaultdict(list)
    for folder in source_dirs:
        for row in _in_range(Path(folder) / "videos.parquet", low, high):
            videos.setdefault(row["video_id"], from_row(VideoRecord, row))
        for row in _in_range(Path(folder) / "events.parquet", low, high):
            events[row["video_id"]].append(from_row(Event, row))
    return [(videos[v], events.get(v, [])) for v in sorted(videos)]


def visible_batch(source_dirs: list[str], low: str, high: str) -> tuple[list[tuple[VideoRecord, list[Event]]], int]:
    """load_batch with only the events the stream shows, and how many it never shows (counted once,
    not once per task)."""
    batch, unseen = [], 0
    for video, events in load_batch(source_dirs, low, high):
        shown, hidden = visible_events(video, events)
        batch.append((video, shown))
        unseen += len(hidden)
    return batch, unseen


def candidate_hash(seed: int, key: str) -> int:
    return int(stable_id(seed, key), 16)


def _allowed(events: list[Event], sources: list[str] | None) -> list[Event]:
    return events if sources is None else [e for e in events if e.source in sources]


# ---- stage 2: plan -------------------------------------------------------------------------------------

def plan_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Per task, the hash of every candidate of one batch and the rank hash of its video."""
    found: dict[str, dict[str, list[int]]] = {}
    for video, events in visible_batch(item["source_dirs"], item["low"], item["high"])[0]:
        rank = candidate_hash(item["seed"], video.video_id)
        for task, sources in item["tasks"].items():
            entry = found.setdefault(task, {"hashes": [], "videos": []})
            for candidate in BUILDERS[task]().candidates(video, _allowed(events, sources)):
                entry["hashes"].append(candidate_hash(item["seed"], candidate.key))
                entry["videos"].append(rank)
    return [{"batch": item["batch"], "tasks": found}]


@dataclass
class Plan:
    """What the build makes: per task, the largest candidate hash it takes; and the validation videos."""

    stamp: str
    batches: list[tuple[str, str]]
    thresholds: dict[str, int]
    candidates: dict[str, int]
    held_out: list[str]
    source_dirs: list[str]

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.__dict__, indent=1))

    @classmethod
    def load(cls, path: Path) -> Plan:
        data = json.loads(path.read_text())
        data["batches"] = [tuple(b) for b in data["batches"]]
        return cls(**data)


def _all_video_ids(source_dirs: list[str]) -> list[str]:
    ids: set[str] = set()
    for folder in source_dirs:
        ids.update(pq.read_table(Path(folder) / "videos.parquet", columns=["video_id"])["video_id"].to_pylist())
    return sorted(ids)


def make_plan(config: MixtureConfig, source_dirs: list[str], stamp: str, executor: Executor) -> Plan:
    """Quotas by candidate hash, then the split over the videos that the chosen candidates come from,
    by the same rule as a work-dir release (:func:`streamo_data.release.validation_videos`): whole
    videos, each task with samples in both splits where it has two or more videos."""
    video_ids = _all_video_ids(source_dirs)
    step = config.videos_per_batch
    batches = [(video_ids[i], video_ids[min(i + step, len(video_ids)) - 1]) for i in range(0, len(video_ids), step)]
    tasks = {task: quota.sources for task, quota in config.tasks.items()}
    items = [{"batch": k, "low": low, "high": high, "source_dirs": source_dirs, "tasks": tasks, "seed": config.seed}
             for k, (low, high) in enumerate(batches)]
    # 16 bytes a candidate (its hash and its video's), not Python ints
    hashes: dict[str, list[np.ndarray]] = defaultdict(list)
    videos: dict[str, list[np.ndarray]] = defaultdict(list)
    for result in run_stage(plan_item, items, executor, "plan"):
        for task, entry in result["tasks"].items():
            hashes[task].append(np.array(entry["hashes"], dtype=np.uint64))
            videos[task].append(np.array(entry["videos"], dtype=np.uint64))
    id_of_rank = {candidate_hash(config.seed, v): v for v in video_ids}
    thresholds, candidates, chosen_videos = {}, {}, {}
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
                held_out=sorted(held_out), source_dirs=source_dirs)


def _held_in(held_out: list[str], low: str, high: str) -> list[str]:
    return held_out[bisect.bisect_left(held_out, low): bisect.bisect_right(held_out, high)]


# ---- stage 3: parts ------------------------------------------------------------------------------------

def part_path(parts_dir: Path, batch: int) -> Path:
    return parts_dir / f"part-{batch:06d}.parquet"


def build_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Make one batch's chosen candidates and write them, with their split, as one part file."""
    held_out, rows, rejects = set(item["held_out"]), [], Counter()
    made: Counter[str] = Counter()
    batch, unseen = visible_batch(item["source_dirs"], item["low"], item["high"])
    if unseen:
        rejects[f"events: {NEVER_SEEN}"] += unseen
    for video, events in batch:
        split = "validation" if video.video_id in held_out else "train"
        for task, sources in item["tasks"].items():
            builder = BUILDERS[task]()
            for candidate in builder.candidates(video, _allowed(events, sources)):
                if candidate_hash(item["seed"], candidate.key) > item["thresholds"][task]:
                    continue
                sample, problems = builder.make(video, candidate, task_rng(item["seed"], candidate.key, task))
                rejects.update(f"{task}: {reason_key(p.reason)}" for p in problems)
                if sample is not None:
                    rows.append({**to_row(sample), "split": split})
                    made[f"{task}|{sample.source}"] += 1
    table = pa.Table.from_pylist(rows, schema=PART_SCHEMA)
    write_atomic(Path(item["part"]), lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    summary = {"batch": item["batch"], "made": dict(made), "rejects": dict(rejects)}
    write_text_atomic(Path(item["part"]).with_suffix(".json"), json.dumps(summary))
    return [summary]


# ---- the whole build -------------------------------------------------------------------------------------

@dataclass
class MixtureResult:
    manifest: ReleaseManifest
    sources: dict[str, dict[str, Any]]
    candidates: dict[str, int]
    made: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    resumed_batches: int = 0


def run_mixture(config: MixtureConfig, work_dir: Path, out_dir: Path, executor: Executor) -> MixtureResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    sources = run_sources(config, work_dir, executor)
    source_dirs = [str(work_dir / "sources" / s.name) for s in config.sources]
    stamps = [json.loads((Path(d) / "stamp.json").read_text()) for d in source_dirs]
    stamp = stable_id(config.model_dump(mode="json", exclude={"rows_per_shard"}), stamps, __version__)

    plan_file, parts_dir = work_dir / "plan.json", work_dir / "parts"
    plan = Plan.load(plan_file) if plan_file.exists() else None
    if plan is None or plan.stamp != stamp:
        shutil.rmtree(parts_dir, ignore_errors=True)  # parts of another plan must never mix with this one
        plan = make_plan(config, source_dirs, stamp, executor)
        plan.save(plan_file)
    parts_dir.mkdir(exist_ok=True)

    tasks = {task: quota.sources for task, quota in config.tasks.items()}
    items, resumed = [], 0
    for k, (low, high) in enumerate(plan.batches):
        path = part_path(parts_dir, k)
        if path.exists() and path.with_suffix(".json").exists():
            resumed += 1
            continue
        items.append({"batch": k, "low": low, "high": high, "source_dirs": plan.source_dirs, "tasks": tasks,
                      "seed": config.seed, "thresholds": plan.thresholds, "part": str(path),
                      "held_out": _held_in(plan.held_out, low, high)})
    for _ in run_stage(build_item, items, executor, "build"):
        pass

    result = MixtureResult(manifest=None, sources=sources, candidates=plan.candidates,  # type: ignore[arg-type]
                           resumed_batches=resumed)
    writer = ShardWriter(out_dir, config.rows_per_shard)
    seen: set[int] = set()
    tasks_seen: set[str] = set()
    total = 0
    for k in range(len(plan.batches)):
        summary = json.loads(part_path(parts_dir, k).with_suffix(".json").read_text())
        result.made.update(summary["made"])
        result.rejects.update(summary["rejects"])
        table = pq.read_table(part_path(parts_dir, k))
        if not table.num_rows:
            continue
        ids = [int(s, 16) for s in table["sample_id"].to_pylist()]
        fresh = [i not in seen and not seen.add(i) for i in ids]  # type: ignore[func-returns-value]
        result.duplicates += fresh.count(False)
        table = table.filter(pa.array(fresh))
        for (task, split), group in _groups(table):
            writer.write(task, split, group.drop_columns(["split"]))
            tasks_seen.add(task)
            total += group.num_rows
    shards = writer.finish()
    result.manifest = ReleaseManifest(name=config.name, version=__version__, fps=config.fps, num_samples=total,
                                      tasks=sorted(tasks_seen), shards=shards, targets=config.targets,
                                      fingerprint=stamp)
    publish(out_dir, result.manifest)
    write_text_atomic(work_dir / "build_report.json", json.dumps({
        "candidates": plan.candidates, "made": dict(result.made), "rejects": dict(result.rejects),
        "duplicates": result.duplicates, "samples": total, "targets": config.targets}, indent=2))
    return result


def _groups(table: pa.Table) -> list[tuple[tuple[str, str], pa.Table]]:
    """Rows per (task, split), each group in its original order."""
    groups = []
    for task in sorted(pc.unique(table["task"]).to_pylist()):
        of_task = pc.equal(table["task"], task)
        for split in ("train", "validation"):
            group = table.filter(pc.and_(of_task, pc.equal(table["split"], split)))
            if group.num_rows:
                groups.append(((task, split), group))
    return groups
