"""Running a recipe: each parsed item checked against its video's duration, then events.parquet,
videos.parquet and recipe_report.json written (merged into a work dir that holds other sources' work)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from streamo_data.core.errors import UserError
from streamo_data.core.moments import with_moments
from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import (
    MAX_VIDEO_DURATION_S,
    Event,
    VideoRecord,
    leaves_root,
)
from streamo_data.sources.recipes.base import (
    EVENTS_ROW_GROUP,
    RECORD_ERRORS,
    WHOLE_VIDEO,
    WRONG_SHAPE,
    RawEvent,
    Recipe,
    RecipeReport,
    shape_error,
)
from streamo_data.sources.recipes.catalogue import VideoCatalogue, default_path, metadata_record
from streamo_data.store.io import write_atomic, write_text_atomic
from streamo_data.store.storage import AnyPath, make_dirs
from streamo_data.store.tables import EVENT_FEATURES, to_row
from streamo_data.store.workdir import ingested_from, merge_recipe_output


def nothing_written(annotations: AnyPath, report: RecipeReport) -> str:
    """Why a file gave no event, in one line: empty, of another format, or every item skipped (top reasons)."""
    reasons = "; ".join(f"{reason} ×{count}" for reason, count in report.skipped.most_common(3))
    if not report.read and not report.skipped:
        return f"{annotations}: no {report.recipe} items: the file is empty"
    if not report.read:
        return (f"{annotations}: no {report.recipe} item in it; is it a {report.recipe} file? Every line was"
                f" skipped: {reasons}")
    return f"{annotations}: no event written; all {report.read} {report.recipe} items were skipped: {reasons}"


TOO_LONG = (f"duration past {MAX_VIDEO_DURATION_S / 3600:g} h, the longest a video may last (a typo or a crafted"
            " file: every stage spends memory per frame)")


def check_item(item: RawEvent, catalogue: VideoCatalogue, recipe: Recipe, fps: float, path_template: str,
               source: str, report: RecipeReport) -> tuple[Event, VideoRecord] | None:
    """The event and video of one parsed item checked against its duration, or None when it is skipped
    (counted in ``report`` with its reason)."""
    entry = catalogue.get(item.video_key)
    if catalogue and entry is None:
        report.skip(item.where, "unknown video: not in the --videos catalogue")
        return None
    duration = item.duration_s if item.duration_s is not None else (entry.duration_s if entry else None)
    if duration is None or duration <= 0:
        report.skip(item.where, "no duration: the annotation has none and no --videos catalogue gives one")
        return None
    if duration > MAX_VIDEO_DURATION_S:
        report.skip(item.where, TOO_LONG)
        return None
    if item.start_s < 0:
        report.skip(item.where, "negative start time")
        return None
    if item.end_s < item.start_s:
        report.skip(item.where, "end before start")
        return None
    end = duration if item.end_s == WHOLE_VIDEO else item.end_s
    if end > duration:
        if end > duration + recipe.end_tolerance_s or item.start_s >= duration:
            report.skip(item.where, "time past the video's duration")
            return None
        end = duration
        report.clipped += 1
    path = entry.path if entry and entry.path else default_path(item.video_key, path_template)
    if leaves_root(path):
        report.skip(item.where, "video path leaves the videos folder (absolute, or up with ..)")
        return None
    record = entry.record if entry and entry.record else metadata_record(item.video_key, path, duration, fps)
    try:
        event = Event.create(video_id=record.video_id, duration_s=duration, start_s=item.start_s, end_s=end,
                             text=item.text.strip(), kind=item.kind, source=source, answer=item.answer,
                             provenance=item.provenance)
    except ValidationError as error:
        report.skip(item.where, "invalid event: " + "; ".join(validation_messages(error)))
        return None
    return event, record


ALL_SUBSETS = "all"


def chosen_subsets(recipe: Recipe, subsets: Sequence[str] | None) -> frozenset[str] | None:
    """The subsets to read: the source's training data by default, every one for ``all`` (None: no filter).
    A name the source does not publish is a UserError listing the ones it does."""
    if subsets is None:
        return frozenset(recipe.splits.train)
    if ALL_SUBSETS in subsets:
        return None
    unknown = [name for name in subsets if name not in recipe.splits.known]
    if unknown:
        raise UserError(f"{recipe.name} has no subset {unknown[0]!r}; its subsets: "
                        f"{', '.join(recipe.splits.known)} (training: {', '.join(recipe.splits.train)}), or all")
    return frozenset(subsets)


def check_subsets(recipe: Recipe, subsets: Sequence[str] | None, file_subset: str | None) -> frozenset[str] | None:
    """:func:`chosen_subsets`, and a ``file_subset`` the source publishes: the one check the CLI, a mixture
    config (when it is loaded) and :func:`run_recipe` all make."""
    chosen = chosen_subsets(recipe, subsets)
    if file_subset is not None and file_subset not in recipe.splits.known:
        raise UserError(f"--file-subset {file_subset!r}: {recipe.name}'s subsets are {', '.join(recipe.splits.known)}")
    return chosen


def subset_of(item: RawEvent, file_subset: str | None) -> str | None:
    return item.subset if item.subset is not None else file_subset


def left_out(recipe: Recipe, subset: str | None) -> str:
    """The skip reason of an item outside the chosen subsets (one phrase per subset, so they count together)."""
    if subset is None:
        return (f"no official subset known (the record names none and the file name is none of {recipe.name}'s"
                " published ones): give --file-subset, or --subset all")
    if subset in recipe.splits.train:
        return f"subset {subset}: not chosen (--subset)"
    return f"subset {subset}: held out, not training data (--subset {subset} reads it)"


def run_recipe(
    recipe: Recipe, annotations: AnyPath, out_dir: AnyPath, *, videos: AnyPath | None = None, fps: float = 1.0,
    path_template: str = "{key}.mp4", source: str | None = None, replace: bool = False,
    subsets: Sequence[str] | None = None, file_subset: str | None = None,
) -> RecipeReport:
    """Parse, check and write ``events.parquet`` (sorted by video, in row groups), ``videos.parquet``,
    ``recipe_report.json`` into ``out_dir``. Events carry ``source`` (default: the recipe's name), so
    two files of one format (train and val) can stay apart in a mixture.

    An ``out_dir`` that already holds work is merged into by source (see streamo_data.store.workdir), unless
    ``replace``. A file from which no event comes is a UserError, raised before anything is written: an
    empty or wrong-format file, or a rerun that forgot ``videos``, must not empty the work directory.

    Only the source's training subsets are read unless ``subsets`` says otherwise (``["all"]``: every one);
    an item of another subset is a counted skip. ``file_subset`` names the subset of a file whose name is
    not the one the source publishes (a renamed ``val_1.json``)."""
    chosen = check_subsets(recipe, subsets, file_subset)
    of_file = file_subset or recipe.splits.of_file(annotations.name)
    catalogue = VideoCatalogue.load(videos, fps)
    report = RecipeReport(recipe=source or recipe.name,
                          subsets=sorted(chosen) if chosen is not None else [ALL_SUBSETS])
    video_rows: dict[str, dict[str, Any]] = {}
    batches: list[pa.RecordBatch] = []
    pending: list[dict[str, Any]] = []
    seen: set[str] = set()
    schema = EVENT_FEATURES.arrow_schema

    for item in recipe.parse(annotations, report):
        report.read += 1
        if chosen is not None and (subset := subset_of(item, of_file)) not in chosen:
            report.skip(item.where, left_out(recipe, subset))
            continue
        try:
            checked = check_item(item, catalogue, recipe, fps, path_template, source or recipe.name, report)
        except UserError:
            raise
        except RECORD_ERRORS as error:  # a field no check above foresaw: this item alone is skipped
            report.skip(item.where, WRONG_SHAPE, shape_error(error))
            continue
        if checked is None:
            continue
        event, record = checked
        if event.event_id in seen:  # the same line twice: event ids are content hashes
            report.skip(item.where, "duplicate of an earlier line")
            continue
        seen.add(event.event_id)
        if record.video_id not in video_rows:  # a video has many events: its row is made once
            video_rows[record.video_id] = to_row(record)
        pending.append(to_row(event))
        if len(pending) >= EVENTS_ROW_GROUP:
            batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
            pending = []
    if pending:
        batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))

    for cached in (metadata_record, default_path):  # a worker's next recipe needs none of them
        cached.cache_clear()
    events = pa.Table.from_batches(batches, schema=schema)
    events = events.sort_by([("video_id", "ascending"), ("start_s", "ascending"), ("end_s", "ascending"),
                             ("event_id", "ascending")])
    if recipe.paraphrases:
        events = with_moments(events)
    report.events, report.videos = events.num_rows, len(video_rows)
    if not report.events:
        raise UserError(nothing_written(annotations, report))

    events, video_table = merge_recipe_output(out_dir, report.recipe, events, video_rows.values(), fps,
                                              catalogue.root, replace)
    make_dirs(out_dir)
    # videos first: a crash between the two leaves a video without events, never events without a video
    write_atomic(out_dir / "videos.parquet", lambda tmp: pq.write_table(video_table, tmp, compression="zstd"))
    write_atomic(out_dir / "events.parquet", lambda tmp: pq.write_table(
        events, tmp, compression="zstd", row_group_size=EVENTS_ROW_GROUP))
    if catalogue.root is not None and (replace or ingested_from(out_dir) is None):
        write_text_atomic(out_dir / "ingest.json", json.dumps({"video_dir": str(catalogue.root), "fps": fps}))
    write_text_atomic(out_dir / "recipe_report.json", json.dumps(report.as_dict(), indent=2))
    return report
