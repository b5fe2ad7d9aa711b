"""Step 1b of the mixture, the LLM annotators: each annotator a source names runs over that source's
videos (through :func:`streamo_data.stages.annotate_llm.run_llm_annotation`: cached in ``WORK/llm_cache``,
resumable, rate-limited, on Ray) and adds events whose ``source`` is ``<source>:<annotator>``
(``...:<type>`` for QA).

It is a step of its own because it costs money: an annotator is skipped when its stamp (the source's
stamp, kind, model, endpoint, prompt hash, window) is unchanged and its last run lost no request, and a
changed model drops its old events and runs again, so a rerun sends only what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streamo_data import __version__
from streamo_data.core.errors import UserError
from streamo_data.core.schema import Event
from streamo_data.pipelines.mixture.config import GENERATED, AnnotatorConfig, MixtureConfig, SourceConfig
from streamo_data.pipelines.mixture.sources import source_stamp
from streamo_data.runtime.runner import Executor
from streamo_data.stages.annotate_llm import preflight, run_llm_annotation
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, make_dirs, move, remove_tree
from streamo_data.store.tables import from_row, iter_rows, to_row, write_rows
from streamo_data.store.workdir import EVENTS


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


def state_path(out: AnyPath, annotator: str) -> AnyPath:
    """``annotators/<name>/state.json``: the stamp, whether the run lost no request, and its report."""
    return out / "annotators" / annotator / "state.json"


def _rewrite_events(out: AnyPath, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> int:
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
            state_file = state_path(out, annotator.name)
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
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
            make_dirs(state_file.parent)
            for suffix in ("rejects.jsonl", "report.json"):  # two annotators of one kind keep theirs apart
                made = out / f"annotate_{annotator.kind}_{suffix}"
                if made.exists():
                    move(made, state_file.parent / suffix)
            reports[owner] = report.as_dict(options.settings)
            # a run that lost requests (not answered at all) runs again next time; cached replies cost nothing
            write_text_atomic(state_file, json.dumps({"stamp": stamp, "complete": report.usage.failed == 0,
                                                      "report": reports[owner]}, indent=1))
    return reports


def annotator_stamps(config: MixtureConfig, work_dir: AnyPath) -> list[Any]:
    return [json.loads(state_path(work_dir / "sources" / s.name, a.name).read_text())["stamp"]
            for s in config.sources for a in s.annotators]

