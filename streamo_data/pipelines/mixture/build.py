"""Step 3 of the mixture, the parts: a second pass builds the candidates the plan chose, batch by batch,
each batch into its own ``WORK/parts/part-NNNNNN.parquet`` (written atomically) with a summary beside it.

Parts are what make the build resumable: a rerun skips batches whose part and summary are written, so a
killed build resumes where it stopped and produces the same bytes.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from streamo_data.core.reasons import reason_key
from streamo_data.corpus.tasks import BUILDERS, NEVER_SEEN, task_rng
from streamo_data.pipelines.mixture.batches import allowed_events, visible_batch
from streamo_data.pipelines.mixture.config import MixtureConfig
from streamo_data.pipelines.mixture.plan import BatchSpec, Plan, candidate_hash
from streamo_data.runtime.batch_scope import batch_scope
from streamo_data.runtime.runner import worker_node
from streamo_data.store.io import write_atomic, write_text_atomic
from streamo_data.store.storage import AnyPath, location
from streamo_data.store.tables import SAMPLE_FEATURES, samples_table

PART_SCHEMA = SAMPLE_FEATURES.arrow_schema.append(pa.field("split", pa.string()))


class BuildSpec(BatchSpec):
    """One batch to build, as the runner passes it to :func:`build_item` (plain JSON): the batch, each
    task's largest candidate hash taken, the part file to write, the batch's validation videos, and per
    task the batch's videos that a taken candidate comes from (None: not known, list them all)."""

    thresholds: dict[str, int]
    part: str
    held_out: list[str]
    chosen: dict[str, list[str]] | None = None

    @classmethod
    def for_batch(cls, config: MixtureConfig, plan: Plan, batch: int, part: AnyPath) -> BuildSpec:
        low, high = plan.batches[batch]
        base = BatchSpec.of(config, batch, low, high, plan.source_dirs, plan.stamp, plan.excluded)
        return cls(**base.model_dump(), thresholds=plan.thresholds, part=str(part),
                   held_out=_in_range(plan.held_out, low, high),
                   chosen=None if plan.chosen is None else
                   {task: _in_range(ids, low, high) for task, ids in plan.chosen.items()})


class PartSummary(BaseModel):
    """``part-NNNNNN.json``, beside its part: what the batch made (task -> sample source -> count), what
    it rejected (reason -> count), and the Ray node that built it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch: int
    made: dict[str, dict[str, int]]
    rejects: dict[str, int]
    node: str = "local"

    @classmethod
    def read(cls, part: AnyPath) -> PartSummary | None:
        """The summary of a part already built, or None when the batch is to be built (again): no part, no
        summary, or a summary in another form (written by an older version; rebuilding gives the same
        bytes)."""
        path = part.with_suffix(".json")
        if not (part.exists() and path.exists()):
            return None
        try:
            return cls.model_validate_json(path.read_text())
        except ValueError:  # a pydantic ValidationError among them
            return None


def _in_range(video_ids: list[str], low: str, high: str) -> list[str]:
    """The ids of a sorted list that lie in [low, high]."""
    return video_ids[bisect.bisect_left(video_ids, low): bisect.bisect_right(video_ids, high)]


def part_path(parts_dir: AnyPath, batch: int) -> AnyPath:
    return parts_dir / f"part-{batch:06d}.parquet"


def build_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    with batch_scope():  # see streamo_data.runtime.batch_scope
        return _build_item(item)


def _build_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Make one batch's chosen candidates and write them, with their split, as one part file."""
    spec = BuildSpec.model_validate(item)
    held_out, samples, splits = set(spec.held_out), [], []
    # a (video, task) with no taken candidate would only be listed to be skipped (two in five at 465K)
    chosen = None if spec.chosen is None else {task: set(ids) for task, ids in spec.chosen.items()}
    rejects: Counter[str] = Counter()
    made: defaultdict[str, Counter[str]] = defaultdict(Counter)
    batch, unseen = visible_batch(spec.source_dirs, spec.low, spec.high, spec.stamp)
    if unseen:
        rejects[f"events: {NEVER_SEEN}"] += unseen
    for video, events in batch:
        if video.video_id in spec.excluded:  # a benchmark video: the plan counted what it would have given
            continue
        split = "validation" if video.video_id in held_out else "train"
        for task, sources in spec.tasks.items():
            if chosen is not None and video.video_id not in chosen.get(task, ()):
                continue
            builder = BUILDERS[task]()
            for candidate in builder.candidates(video, allowed_events(events, sources)):
                if candidate_hash(spec.seed, candidate.key) > spec.thresholds[task]:
                    continue
                sample, problems = builder.make(video, candidate, task_rng(spec.seed, candidate.key, task))
                rejects.update(f"{task}: {reason_key(p.reason)}" for p in problems)
                if sample is not None:
                    samples.append(sample)
                    splits.append(split)
                    made[task][sample.source] += 1
    table = samples_table(samples, PART_SCHEMA, split=splits)
    part = location(spec.part)
    # lz4, not the release's zstd: a part is read once, by the release, and zstd was a tenth of a batch's time
    write_atomic(part, lambda tmp: pq.write_table(table, tmp, compression="lz4"))
    summary = PartSummary(batch=spec.batch, made={task: dict(sources) for task, sources in made.items()},
                          rejects=dict(rejects), node=worker_node())
    written = summary.model_dump(mode="json")
    write_text_atomic(part.with_suffix(".json"), json.dumps(written))
    return [written]


def by_task_and_split(table: pa.Table) -> list[tuple[tuple[str, str], pa.Table]]:
    """Rows per (task, split), each group in its original order."""
    groups = []
    for task in sorted(pc.unique(table["task"]).to_pylist()):
        of_task = pc.equal(table["task"], task)
        for split in ("train", "validation"):
            group = table.filter(pc.and_(of_task, pc.equal(table["split"], split)))
            if group.num_rows:
                groups.append(((task, split), group))
    return groups
