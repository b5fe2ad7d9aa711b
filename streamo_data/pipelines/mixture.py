"""The full Streamo-Instruct mixture: sources -> recipes -> plan -> parts -> release, on Ray, resumable.

1. **recipes**: each source's annotation file becomes ``WORK/sources/<name>/{events,videos}.parquet``
   (skipped when its inputs are unchanged); a source with videos and no annotation file is ingested.
1b. **annotators**: each LLM annotator a source names runs over that source's videos (through
   :func:`streamo_data.pipelines.annotate.run_llm_annotation`: cached in ``WORK/llm_cache``, resumable,
   rate-limited, on Ray) and adds events whose ``source`` is ``<source>:<annotator>`` (``...:<type>`` for
   QA). Skipped when its stamp (the source's stamp, kind, model, endpoint, prompt hash, window) is
   unchanged and its last run lost no request; a changed model drops its old events and runs again.
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
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamo_data import __version__
from streamo_data.annotators.client import ClientSettings
from streamo_data.errors import UserError
from streamo_data.io import write_atomic, write_text_atomic
from streamo_data.pipelines.annotate import AnnotateOptions, AnnotateReport, estimate, preflight, run_llm_annotation
from streamo_data.pipelines.runner import Executor, run_stage, worker_node
from streamo_data.pipelines.stages import EVENTS, INGEST_MANIFEST, run_ingest
from streamo_data.reasons import reason_key, validation_messages
from streamo_data.recipes import RECIPES, run_recipe
from streamo_data.release import ShardWriter, publish
from streamo_data.schema import Event, ReleaseManifest, VideoRecord, stable_id
from streamo_data.split import validation_videos
from streamo_data.storage import (
    AnyPath,
    StoragePath,
    file_stamp,
    is_url,
    location,
    make_dirs,
    move,
    redacted,
    remove_tree,
)
from streamo_data.tables import SAMPLE_FEATURES, from_row, iter_rows, read_table, to_row, write_rows
from streamo_data.tasks import BUILDERS, NEVER_SEEN, check_task_names, task_rng
from streamo_data.tasks.base import visible_events

PART_SCHEMA = SAMPLE_FEATURES.arrow_schema.append(pa.field("split", pa.string()))


# ---- configuration -----------------------------------------------------------------------------------

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
GENERATED = "llm:"  # the source prefix run_llm_annotation gives its events; the stage renames them


class AnnotatorConfig(BaseModel):
    """One LLM annotator over a source's videos. The YAML writes everything flat beside ``name`` and
    ``kind``: the client settings (model, base_url, api_key_env, concurrency, requests_per_minute,
    tokens_per_minute, prices, ...) go to :class:`ClientSettings`, the rest (prompts, window_s, actors,
    text_model, min_span_iou, ...) to :class:`AnnotateOptions`, which checks the kind against the
    annotate pipeline's registry: a kind it learns is accepted here without a change."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(pattern=NAME)
    options: AnnotateOptions

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "options" not in data:
            client = {k: v for k, v in data.items() if k in ClientSettings.model_fields}
            rest = {k: v for k, v in data.items() if k not in client and k != "name"}
            if "cache_dir" in rest:
                raise ValueError("cache_dir is the mixture's (WORK/llm_cache), not an annotator's")
            data = {"name": data.get("name", data.get("kind")), "options": {**rest, "settings": client}}
        return data

    @property
    def kind(self) -> str:
        return self.options.kind

    @property
    def settings(self) -> ClientSettings:
        return self.options.settings

    def with_cache(self, cache_dir: AnyPath) -> AnnotateOptions:
        return self.options.model_copy(update={"cache_dir": cache_dir})

    def stamp(self, prompts: dict[str, Any]) -> dict[str, Any]:
        """What its events depend on: kind, model, endpoint, every stage's prompt, the job settings; not
        the limits, prices, key or actors, which change no reply."""
        options = self.options.model_dump(mode="json", exclude={"settings", "actors", "cache_dir", "prompts"})
        return {**options, "model": self.settings.model, "endpoint": self.settings.endpoint,
                "prompts": {stage: prompt.sha256 for stage, prompt in sorted(prompts.items())}}


class SourceConfig(BaseModel):
    """A recipe over an annotation file, or (no recipe) a folder of videos that is ingested; either may
    name annotators, which need the videos on disk: ``videos`` a folder, or an ingest videos.parquet
    with its ingest.json beside it."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(pattern=NAME)
    recipe: str | None = None
    annotations: StoragePath | None = None
    videos: StoragePath | None = None
    path_template: str = "{key}.mp4"
    annotators: list[AnnotatorConfig] = Field(default_factory=list)

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str | None) -> str | None:
        if value is not None and value not in RECIPES:
            raise ValueError(f"unknown recipe {value!r}; known: {', '.join(sorted(RECIPES))}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if (self.recipe is None) != (self.annotations is None):
            raise ValueError(f"source {self.name}: a recipe and its annotations file go together")
        if self.recipe is None and self.videos is None:
            raise ValueError(f"source {self.name}: give a recipe and annotations, or a videos folder to ingest")
        names = [a.name for a in self.annotators]
        if len(set(names)) != len(names):
            raise ValueError(f"source {self.name}: two annotators share a name (give each a `name:`)")
        return self

    @property
    def has_video_files(self) -> bool:
        """Whether its videos can be looked at (not only their durations known from metadata)."""
        if self.videos is None:
            return False
        if self.videos.is_dir():
            return True
        return self.videos.suffix.lower() == ".parquet" and (self.videos.parent / INGEST_MANIFEST).exists()

    def event_sources(self) -> list[str]:
        """The names a task's ``sources:`` may use for this source's events (``<name>:<annotator>:<type>``
        is checked by its ``<name>:<annotator>``)."""
        return [self.name, *(f"{self.name}:{a.name}" for a in self.annotators)]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, where: str) -> str:
    """``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error naming it
    (left in place, it would surface later as a path that does not exist or a URL that is not one)."""

    def value(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found:
            return found
        if match.group(2) is not None:
            return match.group(2)
        raise ValueError(f"{where} uses ${{{match.group(1)}}}, which is not set")

    # only ``${VAR}``: a bare ``$`` is part of the name (a file called ``$HOME.json`` stays that file)
    return _VAR.sub(value, text)


class TaskQuota(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    quota: int = Field(ge=0)
    sources: list[str] | None = Field(default=None, description=(
        "Only events of these sources (default: all). A source's name takes its recipe's events;"
        " `<source>:<annotator>` takes one annotator's (`<source>:<annotator>:<type>` one QA type)."))


class MixtureConfig(BaseModel):
    """``pipelines/streamo_instruct.yaml``: what goes into the corpus and how much of each task."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

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
        check_task_names(sorted(value))
        return value

    @classmethod
    def load(cls, path: Path) -> MixtureConfig:
        """Read the YAML; ``${VAR}`` in paths is expanded and relative paths are taken from the
        config file's folder, so one config serves any machine that sets the data root. Whatever is wrong
        with it is one UserError naming the file."""
        try:
            return cls._read(path)
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not readable YAML ({' '.join(str(error).split())})") from None
        except ValueError as error:  # the checks below, and pydantic's, each say what and where
            raise UserError(f"{path}: {error}") from None

    @classmethod
    def _read(cls, path: Path) -> MixtureConfig:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a mixture config (a YAML mapping with sources and tasks)")
        # top-level ``x-...`` keys hold YAML anchors (shared endpoint settings), as in docker compose files
        raw = {key: value for key, value in raw.items() if not str(key).startswith("x-")}

        # a path as the config writes it, for error lines: the value of a ``${VAR}`` may be a secret
        as_written: dict[str, str] = {}

        def local(value: str, where: str) -> str:
            text = expand_env(str(value), where)
            if is_url(text):
                try:
                    location(text)
                except ValueError as error:  # said here, before pydantic would quote the URL
                    raise ValueError(f"{where}: {redacted(str(value))}: {error}") from None
                as_written[text] = str(value)
                return text
            expanded = Path(text)
            resolved = str(expanded if expanded.is_absolute() else (path.parent / expanded).resolve())
            as_written[resolved] = str(value)
            return resolved

        for source in raw.get("sources") or []:
            name = source.get("name", "?") if isinstance(source, dict) else "?"
            for key in ("annotations", "videos"):
                if isinstance(source, dict) and source.get(key):
                    source[key] = local(source[key], f"source {name}: {key}")
            for annotator in (source.get("annotators") or []) if isinstance(source, dict) else []:
                if not isinstance(annotator, dict):
                    continue
                where = f"source {name}: annotator {annotator.get('name', annotator.get('kind', '?'))}"
                for key, value in list(annotator.items()):
                    if isinstance(value, str):
                        annotator[key] = expand_env(value, f"{where}: {key}")
                if annotator.get("prompts"):
                    annotator["prompts"] = local(annotator["prompts"], f"{where}: prompts")
        try:
            config = cls.model_validate(raw)
        except ValidationError as error:  # one line per problem, the field named, never the value
            raise ValueError("; ".join(validation_messages(error))) from None
        for source in config.sources:
            for label, file in (("annotations", source.annotations), ("videos", source.videos)):
                if file is not None and not file.exists():
                    written = as_written.get(str(file), str(file))
                    shown = written if "${" in written else str(file)
                    raise ValueError(f"source {source.name}: {label} {redacted(shown)} does not exist"
                                     + (" (variables as set in the environment)" if shown != str(file) else ""))
            if source.recipe is None and source.videos is not None and not source.videos.is_dir():
                raise ValueError(f"source {source.name}: without a recipe, videos must be a folder to ingest")
        names = [s.name for s in config.sources]
        if len(set(names)) != len(names):
            raise ValueError("two sources share a name")
        known = {n for s in config.sources for n in s.event_sources()}
        for task, quota in config.tasks.items():
            missing = sorted(n for n in quota.sources or [] if ":".join(n.split(":")[:2]) not in known)
            if missing:
                raise ValueError(f"task {task} names sources that the config does not declare: {missing}"
                                 " (a source's name, or <source>:<annotator>)")
        return config

    def stamp_fields(self) -> dict[str, Any]:
        """What the plan depends on directly; annotators reach it through their own stamps, so a changed
        rate limit or price does not rebuild the plan."""
        return self.model_dump(mode="json", exclude={"rows_per_shard": True, "sources": {"__all__": {"annotators"}}})

    @property
    def targets(self) -> dict[str, int]:
        return {task: quota.quota for task, quota in self.tasks.items()}


def _file_stamp(path: AnyPath | None) -> list[Any]:
    if path is None:
        return []
    if path.is_dir():
        return [str(path)]
    return file_stamp(path)


# ---- stage 1: recipes ----------------------------------------------------------------------------------

def recipe_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    source = SourceConfig.model_validate(item["source"])
    out = location(item["out"])
    assert source.recipe is not None and source.annotations is not None  # recipe-less sources are ingested
    report = run_recipe(RECIPES[source.recipe](), source.annotations, out, videos=source.videos,
                        fps=item["fps"], path_template=source.path_template, source=source.name)
    manifest = source.videos.parent / INGEST_MANIFEST if source.videos is not None else None
    if manifest is not None and source.videos is not None and source.videos.suffix.lower() == ".parquet" \
            and manifest.exists() \
            and not (out / INGEST_MANIFEST).exists():  # the catalogue's videos live where it was ingested from
        write_text_atomic(out / INGEST_MANIFEST, manifest.read_text(encoding="utf-8"))
    write_text_atomic(out / "stamp.json", json.dumps(item["stamp"]))
    return [report.as_dict()]


def _ingest_source(source: SourceConfig, out: AnyPath, fps: float, stamp: dict[str, Any],
                   executor: Executor) -> dict[str, Any]:
    """A source that is only videos (the LLM annotators make its events): ingest the folder."""
    assert source.videos is not None
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
    todo = []
    for source in config.sources:
        out = work_dir / "sources" / source.name
        stamp = source_stamp(source, config.fps)
        stamp_path = out / "stamp.json"
        if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and (out / "events.parquet").exists():
            reports[source.name] = json.loads((out / "recipe_report.json").read_text())
        elif source.recipe is None:
            reports[source.name] = _ingest_source(source, out, config.fps, stamp, executor)
        else:
            todo.append({"source": source.model_dump(mode="json"), "out": str(out), "fps": config.fps,
                         "stamp": stamp})
    for report in run_stage(recipe_item, todo, executor, "recipes"):
        reports[report["recipe"]] = report
    return reports


def source_stamp(source: SourceConfig, fps: float) -> dict[str, Any]:
    return {"recipe": source.recipe, "annotations": _file_stamp(source.annotations),
            "videos": _file_stamp(source.videos), "template": source.path_template, "fps": fps,
            "version": __version__}


# ---- stage 1b: LLM annotators over each source's videos ------------------------------------------------

def lacking_videos(config: MixtureConfig) -> list[str]:
    """Sources that name annotators but whose videos are known from metadata only."""
    return [s.name for s in config.sources if s.annotators and not s.has_video_files]


def require_videos(config: MixtureConfig) -> None:
    missing = lacking_videos(config)
    if missing:
        raise UserError(f"source(s) {', '.join(missing)} name annotators but their videos are known from metadata"
                        " only: give `videos:` a folder (or an ingest videos.parquet) to annotate;"
                        " `streamo build --dry-run` lists them")


def annotator_stamp(source: SourceConfig, annotator: AnnotatorConfig, fps: float,
                    prompts: dict[str, Any]) -> dict[str, Any]:
    """The source's stamp (its events are the annotator's input) and the annotator's own."""
    return {"source": source_stamp(source, fps), "annotator": annotator.stamp(prompts), "version": __version__}


def _state_path(out: AnyPath, annotator: str) -> AnyPath:
    """``annotators/<name>/state.json``: the stamp, whether the run lost no request, and its report."""
    return out / "annotators" / annotator / "state.json"


def _rewrite_events(out: AnyPath, change: Any) -> int:
    """Apply ``change(row) -> row | None`` (None drops it) to the source's events; how many changed."""
    rows: dict[str, dict[str, Any]] = {}
    changed = 0
    for row in iter_rows(out / EVENTS):
        new = change(row)
        changed += new is not row
        if new is not None:
            rows.setdefault(new["event_id"], new)
    if changed:
        ordered = sorted(rows.values(), key=lambda r: (r["video_id"], r["start_s"], r["end_s"], r["event_id"]))
        write_rows(out / EVENTS, Event, ordered)
    return changed


def _drop_annotator_events(out: AnyPath, source: str, keep: set[str]) -> int:
    """Drop the events of this source's annotators not in ``keep`` (removed from the config, or about to
    run again with another model), and any generated event not yet renamed (a run killed before its rename)."""

    for folder in (out / "annotators").glob("*"):
        if folder.name not in keep:
            remove_tree(folder)

    def change(row: dict[str, Any]) -> dict[str, Any] | None:
        name = row["source"]
        if name.startswith(GENERATED):
            return None
        if name.startswith(source + ":") and name.split(":")[1] not in keep:
            return None
        return row

    return _rewrite_events(out, change)


def _claim_events(out: AnyPath, owner: str) -> int:
    """Rename the events the annotator just made (``llm:<kind>[:<type>]``) to ``<source>:<annotator>
    [:<type>]``; their ids are content hashes over the source, so they are made again."""

    def change(row: dict[str, Any]) -> dict[str, Any] | None:
        if not row["source"].startswith(GENERATED):
            return row
        event = from_row(Event, row)
        rest = row["source"].split(":")[2:]
        renamed = Event.create(**{**event.model_dump(exclude={"event_id"}), "source": ":".join([owner, *rest])})
        return to_row(renamed)

    return _rewrite_events(out, change)


def run_annotators(config: MixtureConfig, work_dir: AnyPath, executor: Executor) -> dict[str, dict[str, Any]]:
    """Every annotator of every source, in config order; one up to date with its stamp is skipped (and so
    sends nothing). Refuses, before anything is sent, a source with annotators and no videos on disk."""
    require_videos(config)
    cache = work_dir / "llm_cache"
    reports: dict[str, dict[str, Any]] = {}
    for source in config.sources:
        out = work_dir / "sources" / source.name
        if not (out / EVENTS).exists() or not (source.annotators or (out / "annotators").exists()):
            continue
        _drop_annotator_events(out, source.name, {a.name for a in source.annotators})
        for annotator in source.annotators:
            owner, options = f"{source.name}:{annotator.name}", annotator.with_cache(cache)
            try:
                prompts = preflight(options)
            except UserError as error:  # a template or the key: said with the annotator it belongs to
                raise UserError(f"annotator {owner}: {error}") from error
            stamp = annotator_stamp(source, annotator, config.fps, prompts)
            state_path = _state_path(out, annotator.name)
            state = json.loads(state_path.read_text()) if state_path.exists() else {}
            if state.get("stamp") == stamp and state.get("complete"):
                reports[owner] = state["report"]
                continue
            _drop_annotator_events(out, source.name,
                                   {a.name for a in source.annotators if a.name != annotator.name})
            try:
                report = run_llm_annotation(out, options, executor)
            except UserError as error:
                raise UserError(f"annotator {owner}: {error}") from error
            if report.nothing_answered:
                raise UserError(f"annotator {owner}: every request failed ({report.first_reject}); nothing was"
                                " added, and a rerun tries again")
            _claim_events(out, owner)
            make_dirs(state_path.parent)
            for suffix in ("rejects.jsonl", "report.json"):  # two annotators of one kind keep theirs apart
                made = out / f"annotate_{annotator.kind}_{suffix}"
                if made.exists():
                    move(made, state_path.parent / suffix)
            reports[owner] = report.as_dict(options.settings)
            # a run that lost requests (not answered at all) runs again next time; cached replies cost nothing
            write_text_atomic(state_path, json.dumps({"stamp": stamp, "complete": report.usage.failed == 0,
                                                      "report": reports[owner]}, indent=1))
    return reports


def annotator_stamps(config: MixtureConfig, work_dir: AnyPath) -> list[Any]:
    return [json.loads(_state_path(work_dir / "sources" / s.name, a.name).read_text())["stamp"]
            for s in config.sources for a in s.annotators]


@dataclass
class SpendRow:
    """One line of ``build --dry-run``: what one stage of one source would send."""

    source: str
    stage: str
    videos: int = 0
    requests: int = 0
    tokens: int = 0
    cost: float = 0.0
    note: str = ""


def dry_run(config: MixtureConfig, work_dir: AnyPath, executor: Executor) -> list[SpendRow]:
    """Per source and stage, the requests, tokens and cost a build would spend; nothing is sent and no
    release is written. The recipes do run (into the work dir, as the build would: they send nothing),
    because the annotators' jobs depend on the videos and events they make. Estimates are upper bounds
    (see :func:`streamo_data.pipelines.annotate.estimate`); an annotator up to date sends nothing."""
    make_dirs(work_dir)
    reports = run_sources(config, work_dir, executor)
    rows: list[SpendRow] = []
    for source in config.sources:
        out = work_dir / "sources" / source.name
        report = reports.get(source.name, {})
        rows.append(SpendRow(source.name, "recipe" if source.recipe else "ingest", videos=report.get("videos", 0),
                             note=f"{report.get('events', 0)} events"))
        for annotator in source.annotators:
            stage = f"annotate {annotator.name} ({annotator.kind}, {annotator.settings.model})"
            if not source.has_video_files:
                rows.append(SpendRow(source.name, stage, note="no videos on disk (metadata only): cannot be annotated"))
                continue
            rows.extend(_spend(config, source, annotator, out, stage))
    return rows


def _spend(config: MixtureConfig, source: SourceConfig, annotator: AnnotatorConfig, out: AnyPath,
           label: str) -> list[SpendRow]:
    """One row per request stage of one annotator (one for a single-request annotator)."""
    from streamo_data.pipelines.annotate import load_prompts

    options = annotator.with_cache(out.parent.parent / "llm_cache")
    try:
        prompts = load_prompts(options)
        estimated: AnnotateReport = estimate(out, options)
    except (OSError, ValueError) as error:  # a UserError (a template, a frame) among them
        return [SpendRow(source.name, label, note=f"cannot estimate: {error}")]
    state_path = _state_path(out, annotator.name)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("stamp") == annotator_stamp(source, annotator, config.fps, prompts) and state.get("complete"):
        return [SpendRow(source.name, label, videos=estimated.videos,
                         note=f"up to date ({estimated.estimated_requests} requests cached): sends nothing")]
    skipped = sum(estimated.rejects.values())
    rows = []
    for stage, tally in estimated.stages.items():
        name = label if len(estimated.stages) == 1 else f"{label}: {stage}"
        rows.append(SpendRow(source.name, name, videos=estimated.videos, requests=int(tally["requests"]),
                             tokens=int(tally["tokens"]), cost=float(tally["cost"]),
                             note=f"{skipped} videos without a file" if skipped else ""))
    return rows or [SpendRow(source.name, label, videos=estimated.videos, note="no jobs")]


# ---- reading one batch of videos from every source -----------------------------------------------------

def _in_range(path: AnyPath, low: str, high: str, version: str | None) -> list[dict[str, Any]]:
    """Rows whose video_id lies in [low, high]; row-group statistics skip the rest of the file. With the
    plan's stamp as ``version``, a source on an object store is downloaded once per worker process."""
    return read_table(path, filters=[("video_id", ">=", low), ("video_id", "<=", high)], snapshot=version).to_pylist()


def load_batch(source_dirs: list[str], low: str, high: str,
               version: str | None = None) -> list[tuple[VideoRecord, list[Event]]]:
    """Every video in [low, high] with the events of every source about it, in video id order (all of
    them; :func:`visible_batch` keeps those the stream shows)."""
    videos: dict[str, VideoRecord] = {}
    events: dict[str, list[Event]] = defaultdict(list)
    for folder in source_dirs:
        for row in _in_range(location(folder) / "videos.parquet", low, high, version):
            videos.setdefault(row["video_id"], from_row(VideoRecord, row))
        for row in _in_range(location(folder) / "events.parquet", low, high, version):
            events[row["video_id"]].append(from_row(Event, row))
    return [(videos[v], events.get(v, [])) for v in sorted(videos)]


def visible_batch(source_dirs: list[str], low: str, high: str,
                  version: str | None = None) -> tuple[list[tuple[VideoRecord, list[Event]]], int]:
    """load_batch with only the events the stream shows, and how many it never shows (counted once,
    not once per task)."""
    batch, unseen = [], 0
    for video, events in load_batch(source_dirs, low, high, version):
        shown, hidden = visible_events(video, events)
        batch.append((video, shown))
        unseen += len(hidden)
    return batch, unseen


def candidate_hash(seed: int, key: str) -> int:
    return int(stable_id(seed, key), 16)


def selected_by(source: str, names: set[str] | list[str]) -> bool:
    """Whether an event's ``source`` is one the names select. A source's name selects its recipe's events
    only; ``<source>:<annotator>`` selects that annotator's, QA types included (``koala:qa`` takes
    ``koala:qa:offline``); ``koala:qa:offline`` selects that type only."""
    parts = source.split(":")
    return source in names or any(":".join(parts[:k]) in names for k in range(2, len(parts)))


def _allowed(events: list[Event], sources: list[str] | None) -> list[Event]:
    if sources is None:
        return events
    names = set(sources)
    return [e for e in events if selected_by(e.source, names)]


# ---- stage 2: plan -------------------------------------------------------------------------------------

def plan_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Per task, the hash of every candidate of one batch and the rank hash of its video."""
    found: dict[str, dict[str, list[int]]] = {}
    for video, events in visible_batch(item["source_dirs"], item["low"], item["high"], item.get("stamp"))[0]:
        rank = candidate_hash(item["seed"], video.video_id)
        for task, sources in item["tasks"].items():
            entry = found.setdefault(task, {"hashes": [], "videos": []})
            for candidate in BUILDERS[task]().candidates(video, _allowed(events, sources)):
                entry["hashes"].append(candidate_hash(item["seed"], candidate.key))
                entry["videos"].append(rank)
    return [{"batch": item["batch"], "tasks": found, "node": worker_node()}]


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


def make_plan(config: MixtureConfig, source_dirs: list[str], stamp: str, executor: Executor) -> Plan:
    """Quotas by candidate hash, then the split over the videos that the chosen candidates come from,
    by the same rule as a work-dir release (:func:`streamo_data.split.validation_videos`): whole
    videos, each task with samples in both splits where it has two or more videos."""
    video_ids = _all_video_ids(source_dirs)
    step = config.videos_per_batch
    batches = [(video_ids[i], video_ids[min(i + step, len(video_ids)) - 1]) for i in range(0, len(video_ids), step)]
    tasks = {task: quota.sources for task, quota in config.tasks.items()}
    items = [{"batch": k, "low": low, "high": high, "source_dirs": source_dirs, "tasks": tasks, "seed": config.seed,
              "stamp": stamp} for k, (low, high) in enumerate(batches)]
    # 16 bytes a candidate (its hash and its video's), not Python ints
    hashes: dict[str, list[np.ndarray]] = defaultdict(list)
    videos: dict[str, list[np.ndarray]] = defaultdict(list)
    nodes: Counter[str] = Counter()
    for result in run_stage(plan_item, items, executor, "plan"):
        nodes[result["node"]] += 1
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
                held_out=sorted(held_out), source_dirs=source_dirs, nodes=dict(nodes))


def _held_in(held_out: list[str], low: str, high: str) -> list[str]:
    return held_out[bisect.bisect_left(held_out, low): bisect.bisect_right(held_out, high)]


# ---- stage 3: parts ------------------------------------------------------------------------------------

def part_path(parts_dir: AnyPath, batch: int) -> AnyPath:
    return parts_dir / f"part-{batch:06d}.parquet"


def build_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Make one batch's chosen candidates and write them, with their split, as one part file."""
    held_out, rows = set(item["held_out"]), []
    rejects: Counter[str] = Counter()
    made: Counter[str] = Counter()
    batch, unseen = visible_batch(item["source_dirs"], item["low"], item["high"], item.get("stamp"))
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
    part = location(item["part"])
    write_atomic(part, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    summary = {"batch": item["batch"], "made": dict(made), "rejects": dict(rejects), "node": worker_node()}
    write_text_atomic(part.with_suffix(".json"), json.dumps(summary))
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
    annotators: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: Counter[str] = field(default_factory=Counter)  # part files built per Ray node


def run_mixture(config: MixtureConfig, work_dir: AnyPath, out_dir: AnyPath, executor: Executor) -> MixtureResult:
    require_videos(config)  # before any work: a build that cannot annotate would build without those events
    make_dirs(work_dir)
    sources = run_sources(config, work_dir, executor)
    annotations = run_annotators(config, work_dir, executor)
    source_dirs = [str(work_dir / "sources" / s.name) for s in config.sources]
    stamps = [json.loads((location(d) / "stamp.json").read_text()) for d in source_dirs]
    stamp = stable_id(config.stamp_fields(), stamps, annotator_stamps(config, work_dir), __version__)

    plan_file, parts_dir = work_dir / "plan.json", work_dir / "parts"
    plan = Plan.load(plan_file) if plan_file.exists() else None
    if plan is None or plan.stamp != stamp:
        remove_tree(parts_dir)  # parts of another plan must never mix with this one
        plan = make_plan(config, source_dirs, stamp, executor)
        plan.save(plan_file)
    make_dirs(parts_dir)

    tasks = {task: quota.sources for task, quota in config.tasks.items()}
    items, resumed = [], 0
    for k, (low, high) in enumerate(plan.batches):
        path = part_path(parts_dir, k)
        if path.exists() and path.with_suffix(".json").exists():
            resumed += 1
            continue
        items.append({"batch": k, "low": low, "high": high, "source_dirs": plan.source_dirs, "tasks": tasks,
                      "stamp": plan.stamp,
                      "seed": config.seed, "thresholds": plan.thresholds, "part": str(path),
                      "held_out": _held_in(plan.held_out, low, high)})
    for _ in run_stage(build_item, items, executor, "build"):
        pass

    result = MixtureResult(manifest=None, sources=sources, candidates=plan.candidates,  # type: ignore[arg-type]  # set below
                           resumed_batches=resumed, annotators=annotations)
    writer = ShardWriter(out_dir, config.rows_per_shard)
    seen: set[int] = set()
    tasks_seen: set[str] = set()
    total = 0
    for k in range(len(plan.batches)):
        summary = json.loads(part_path(parts_dir, k).with_suffix(".json").read_text())
        result.made.update(summary["made"])
        result.nodes[summary.get("node", "local")] += 1
        result.rejects.update(summary["rejects"])
        table = read_table(part_path(parts_dir, k))
        if not table.num_rows:
            continue
        ids = [int(s, 16) for s in table["sample_id"].to_pylist()]
        fresh: list[bool] = []
        for i in ids:
            fresh.append(i not in seen)
            seen.add(i)
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
        "duplicates": result.duplicates, "samples": total, "targets": config.targets,
        "annotators": annotations, "nodes": {"plan": plan.nodes, "build": dict(result.nodes)}}, indent=2))
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
