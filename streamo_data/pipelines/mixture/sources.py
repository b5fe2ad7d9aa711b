"""Step 1 of the mixture, the sources: each source's annotation file becomes
``WORK/sources/<name>/{events,videos}.parquet`` through its recipe, and a source with videos and no
annotation file is ingested. A source whose inputs are unchanged since the last run (its stamp) is skipped,
so a rerun of the build starts at the step that has work left.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from streamo_data import __version__
from streamo_data.core.schema import Event
from streamo_data.pipelines.mixture.config import MixtureConfig, SourceConfig
from streamo_data.runtime.batch_scope import batch_scope
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, file_stamp, location
from streamo_data.store.tables import write_rows
from streamo_data.store.workdir import EVENTS, INGEST_MANIFEST


class RecipeSpec(BaseModel):
    """One source's recipe run, as the runner passes it to :func:`recipe_item` (plain JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: dict[str, Any]  # the SourceConfig, dumped as JSON
    out: str
    fps: float
    stamp: dict[str, Any]


def _file_stamp(path: AnyPath | None) -> list[Any]:
    if path is None:
        return []
    if path.is_dir():
        return [str(path)]
    return file_stamp(path)


def recipe_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    with batch_scope():  # see streamo_data.runtime.batch_scope
        return _recipe_item(item)


def _recipe_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    spec = RecipeSpec.model_validate(item)
    source = SourceConfig.model_validate(spec.source)
    out = location(spec.out)
    if source.recipe is None or source.annotations is None:  # recipe-less sources are ingested, never sent here
        raise ValueError(f"source {source.name}: has no recipe and annotations to run (it is ingested instead)")
    report = run_recipe(RECIPES[source.recipe](), source.annotations, out, videos=source.videos,
                        fps=spec.fps, path_template=source.path_template, source=source.name,
                        subsets=source.subset, file_subset=source.file_subset)
    manifest = source.videos.parent / INGEST_MANIFEST if source.videos is not None else None
    if manifest is not None and source.videos is not None and source.videos.suffix.lower() == ".parquet" \
            and manifest.exists() \
            and not (out / INGEST_MANIFEST).exists():  # the catalogue's videos live where it was ingested from
        write_text_atomic(out / INGEST_MANIFEST, manifest.read_text(encoding="utf-8"))
    write_text_atomic(out / "stamp.json", json.dumps(spec.stamp))
    return [report.as_dict()]


def _ingest_source(source: SourceConfig, out: AnyPath, fps: float, stamp: dict[str, Any],
                   executor: Executor) -> dict[str, Any]:
    """A source that is only videos (the LLM annotators make its events): ingest the folder."""
    if source.videos is None:  # the config refuses a source with neither a recipe nor videos
        raise ValueError(f"source {source.name}: has no videos folder to ingest")
    summary = run_ingest(source.videos, out, fps, executor)
    if not (out / EVENTS).exists():  # later stages read every source's events; annotators add to it
        write_rows(out / EVENTS, Event, [])
    report = {"recipe": source.name, "videos": summary.done + summary.reused, "events": 0,
              "skipped": dict(summary.failed)}
    write_text_atomic(out / "recipe_report.json", json.dumps(report))
    write_text_atomic(out / "stamp.json", json.dumps(stamp))
    return report


def run_sources(config: MixtureConfig, work_dir: AnyPath, executor: Executor) -> dict[str, dict[str, Any]]:
    """Run each source's recipe (or ingest) unless its inputs are unchanged since the last run."""
    reports: dict[str, dict[str, Any]] = {}
    todo: list[RecipeSpec] = []
    for source in config.sources:
        out = work_dir / "sources" / source.name
        stamp = source_stamp(source, config.fps)
        stamp_path = out / "stamp.json"
        if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and (out / "events.parquet").exists():
            reports[source.name] = json.loads((out / "recipe_report.json").read_text())
        elif source.recipe is None:
            reports[source.name] = _ingest_source(source, out, config.fps, stamp, executor)
        else:
            todo.append(RecipeSpec(source=source.model_dump(mode="json"), out=str(out), fps=config.fps, stamp=stamp))
    # Largest input first (annotations and the video catalogue a recipe also reads): a recipe is one
    # item, and the biggest started last would run alone on one core while the others idle.
    todo.sort(key=lambda spec: -(_size(spec.stamp["annotations"]) + _size(spec.stamp["videos"])))
    for report in run_stage(recipe_item, [spec.model_dump(mode="json") for spec in todo], executor, "recipes"):
        reports[report["recipe"]] = report
    return reports


def _size(stamp: list[Any]) -> int:
    """An annotation file's size from its stamp (path, size, version); 0 for a folder or none."""
    return int(stamp[1]) if len(stamp) > 1 and isinstance(stamp[1], int) else 0


def source_stamp(source: SourceConfig, fps: float) -> dict[str, Any]:
    return {"recipe": source.recipe, "annotations": _file_stamp(source.annotations),
            "videos": _file_stamp(source.videos), "template": source.path_template, "fps": fps,
            "subset": source.subset, "file_subset": source.file_subset, "version": __version__}
