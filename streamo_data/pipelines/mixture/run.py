"""The whole mixture build, and step 4, the release: each step in order, then the parts streamed in batch
order through the shard writer as they are built (deduplicated by sample id, and counted for the card);
then checksums, the manifest and the card.

This is where the steps meet: the stamp that ties the plan to its inputs (sources, annotators, config,
version) is made here, and a plan of another stamp is never mixed with its parts. The driver holds the
plan and the set of sample ids seen (for deduplication); workers hold one batch of videos.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from streamo_data import __version__
from streamo_data.core.schema import Decontamination, ReleaseManifest, stable_id
from streamo_data.pipelines.mixture.annotators import annotator_stamps, require_videos, run_annotators
from streamo_data.pipelines.mixture.build import BuildSpec, PartSummary, build_item, by_task_and_split, part_path
from streamo_data.pipelines.mixture.config import MixtureConfig
from streamo_data.pipelines.mixture.decontaminate import DECONTAMINATION, Contamination, find_contaminated
from streamo_data.pipelines.mixture.decontaminate import save as save_contamination
from streamo_data.pipelines.mixture.plan import Plan, make_plan
from streamo_data.pipelines.mixture.sources import run_sources
from streamo_data.release.stats import CompositionTally
from streamo_data.release.write import ShardWriter, publish
from streamo_data.runtime.batch_scope import release_memory
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, file_stamp, location, make_dirs, remove_tree
from streamo_data.store.tables import read_table


@dataclass
class MixtureResult:
    manifest: ReleaseManifest
    sources: dict[str, dict[str, Any]]
    candidates: dict[str, int]
    made: Counter[tuple[str, str]] = field(default_factory=Counter)  # samples made per (task, sample source)
    rejects: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    resumed_batches: int = 0
    annotators: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: Counter[str] = field(default_factory=Counter)  # part files built per Ray node

    def made_by_task(self) -> dict[str, dict[str, int]]:
        """``made`` as task -> sample source -> count (as build_report.json has it)."""
        nested: dict[str, dict[str, int]] = {}
        for (task, source), count in self.made.items():
            nested.setdefault(task, {})[source] = count
        return nested


def _built_and_todo(config: MixtureConfig, plan: Plan, parts_dir: AnyPath) -> tuple[dict[int, PartSummary],
                                                                                      list[BuildSpec]]:
    """The summaries of the batches already built (by batch), and the specs of those still to build."""
    built: dict[int, PartSummary] = {}
    todo: list[BuildSpec] = []
    for k in range(len(plan.batches)):
        path = part_path(parts_dir, k)
        summary = PartSummary.read(path)
        if summary is None:
            todo.append(BuildSpec.for_batch(config, plan, k, path))
        else:
            built[k] = summary
    return built, todo


def _in_batch_order(ready: dict[int, PartSummary], todo: list[BuildSpec], batches: int,
                    executor: Executor) -> Iterator[PartSummary]:
    """Every batch's part summary in batch order, building ``todo``: each as soon as it and every batch
    before it are built, so the release is written while later batches build, not after them all."""
    outputs = run_stage(build_item, [spec.model_dump(mode="json") for spec in todo], executor, "build")
    following = 0
    while True:
        while following in ready:
            yield ready.pop(following)
            following += 1
        output = next(outputs, None)
        if output is None:
            break
        built = PartSummary.model_validate(output)
        ready[built.batch] = built
    if following < batches:
        missing = [k for k in range(following, batches) if k not in ready]
        raise RuntimeError(f"the build returned no summary for batches {missing}")


def run_mixture(config: MixtureConfig, work_dir: AnyPath, out_dir: AnyPath, executor: Executor) -> MixtureResult:
    require_videos(config)  # before any work: a build that cannot annotate would build without those events
    make_dirs(work_dir)
    sources = run_sources(config, work_dir, executor)
    annotations = run_annotators(config, work_dir, executor)
    source_dirs = [str(work_dir / "sources" / s.name) for s in config.sources]
    stamps = [json.loads((location(d) / "stamp.json").read_text()) for d in source_dirs]
    benchmarks = [file_stamp(path) for path in config.decontaminate]
    stamp = stable_id(config.stamp_fields(), stamps, annotator_stamps(config, work_dir), benchmarks, __version__)

    plan_file, parts_dir = work_dir / "plan.json", work_dir / "parts"
    plan = Plan.load(plan_file) if plan_file.exists() else None
    if plan is None or plan.stamp != stamp:
        remove_tree(parts_dir)  # parts of another plan must never mix with this one
        contamination = find_contaminated(config, source_dirs)
        save_contamination(contamination, work_dir)
        plan = make_plan(config, source_dirs, stamp, executor, contamination.videos)
        plan.save(plan_file)
    make_dirs(parts_dir)

    built, todo = _built_and_todo(config, plan, parts_dir)
    resumed = len(built)
    writer = ShardWriter(out_dir, config.rows_per_shard)
    tally = CompositionTally()  # the card's composition, counted as the shards are written
    made: Counter[tuple[str, str]] = Counter()
    rejects: Counter[str] = Counter()
    nodes: Counter[str] = Counter()
    seen: set[int] = set()
    tasks_seen: set[str] = set()
    total = duplicates = 0
    for k, summary in enumerate(_in_batch_order(built, todo, len(plan.batches), executor)):
        made.update({(task, source): n for task, counts in summary.made.items() for source, n in counts.items()})
        nodes[summary.node] += 1
        rejects.update(summary.rejects)
        table = read_table(part_path(parts_dir, k))
        if not table.num_rows:
            continue
        ids = [int(s, 16) for s in table["sample_id"].to_pylist()]
        fresh: list[bool] = []
        for i in ids:
            fresh.append(i not in seen)
            seen.add(i)
        repeated = fresh.count(False)
        if repeated:  # most parts repeat nothing: no copy of them
            duplicates += repeated
            table = table.filter(pa.array(fresh))
        for (task, split), group in by_task_and_split(table):
            rows = group.drop_columns(["split"])
            writer.write(task, split, rows)
            tally.add(task, split, rows)
            tasks_seen.add(task)
            total += group.num_rows
        # the workers still build while the driver writes: what a part's tables held goes back at once
        release_memory()
    shards = writer.finish()
    contamination = Contamination.model_validate_json((work_dir / DECONTAMINATION).read_text())
    decontaminated = [
        Decontamination(benchmark=name, file=entry["file"], benchmark_videos=entry["benchmark_videos"],
                        corpus_videos=entry["corpus_videos"], candidates_removed=plan.removed.get(name, {}))
        for name, entry in sorted(contamination.benchmarks.items())]
    manifest = ReleaseManifest(name=config.name, version=__version__, fps=config.fps, num_samples=total,
                               tasks=sorted(tasks_seen), shards=shards, targets=config.targets, fingerprint=stamp,
                               decontamination=decontaminated)
    result = MixtureResult(manifest=manifest, sources=sources, candidates=plan.candidates, made=made,
                           rejects=rejects, duplicates=duplicates, resumed_batches=resumed,
                           annotators=annotations, nodes=nodes)
    publish(out_dir, result.manifest, tally)
    write_text_atomic(work_dir / "build_report.json", json.dumps({
        "candidates": plan.candidates, "made": result.made_by_task(), "rejects": dict(result.rejects),
        "duplicates": result.duplicates, "samples": total, "targets": config.targets,
        "annotators": annotations, "nodes": {"plan": plan.nodes, "build": dict(result.nodes)},
        "decontamination": [entry.model_dump() for entry in decontaminated]}, indent=2))
    return result
