"""What every recipe shares: parsed annotations, the video catalogue, skip accounting, and writing.

A recipe only *parses* its source's published file into :class:`RawEvent` items, reporting each line
it cannot use with a named reason. Everything else (finding durations, checking times against them,
making Event and VideoRecord rows, writing sorted Parquet) happens once, here, for every source.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from streamo_data.errors import UserError
from streamo_data.io import json_limit_reason, loads_json, write_atomic, write_text_atomic
from streamo_data.moments import with_moments
from streamo_data.reasons import validation_messages
from streamo_data.schema import (
    MAX_VIDEO_DURATION_S,
    METADATA_BACKEND,
    Event,
    EventKind,
    Provenance,
    VideoRecord,
    VideoStatus,
    leaves_root,
)
from streamo_data.storage import AnyPath, local_videos, make_dirs
from streamo_data.tables import EVENT_FEATURES, iter_rows, to_row
from streamo_data.video.backends import available_backends
from streamo_data.video.probe import find_videos, is_video_name, probe_video, video_id_for, video_stem
from streamo_data.workdir import ingested_from, merge_recipe_output

# An end time this far past the duration is clipped to it (annotation files round differently from
# the videos they describe); further past, the event is skipped as "past the video's duration".
CLIP_TOLERANCE_S = 1.0
# Charades-STA's ends exceed the Charades CSV ``length`` by up to ~1.5 s (its sentences inherit
# Charades' own action annotations, which run past the clip): clipped within 2 s, not skipped.
CHARADES_END_TOLERANCE_S = 2.0
EVENTS_ROW_GROUP = 16_384
# An end time that means "until the end of the video", for sources whose items cover the whole video but
# whose files carry no duration (offline QA): it becomes the duration the catalogue gives.
WHOLE_VIDEO = math.inf


@dataclass(frozen=True)
class RawEvent:
    """One time-anchored item read from a source file, before any checks."""

    video_key: str
    start_s: float
    end_s: float
    text: str
    kind: EventKind
    duration_s: float | None = None
    answer: str | None = None
    where: str = ""
    provenance: Provenance | None = None  # e.g. the source dataset a released record names


@dataclass
class RecipeReport:
    """Counts of what was read, written and skipped (with its reason), plus a few examples."""

    recipe: str
    read: int = 0
    events: int = 0
    videos: int = 0
    clipped: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, where: str, reason: str, detail: str | None = None) -> None:
        """Count ``reason`` (a fixed phrase, so that skips count together); ``detail`` (what exactly was
        wrong) goes with the example only."""
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < 5:
            examples.append(f"{where} ({detail})" if detail else where)

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "read": self.read, "events": self.events, "videos": self.videos,
                "clipped_to_duration": self.clipped, "skipped": dict(self.skipped), "examples": self.examples}


class Recipe(Protocol):
    name: ClassVar[str]
    kind: ClassVar[EventKind]
    paraphrases: ClassVar[bool]  # the source describes one moment several times (see streamo_data.moments)
    end_tolerance_s: ClassVar[float]  # an end this far past the duration is clipped to it, not skipped

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        """Items of the source file; a line it cannot use goes to ``report.skip`` with a reason."""
        ...


# What a record of the wrong shape makes a recipe's own code raise: a null where a list is (TypeError), a
# string where an object is (AttributeError), a list where an object is (KeyError, IndexError), a number
# too large to count frames with (OverflowError). Recipes read one record at a time through each_record,
# which turns any of these into one counted skip, so no record, however crafted, ends the run.
RECORD_ERRORS: tuple[type[Exception], ...] = (TypeError, ValueError, KeyError, IndexError, AttributeError,
                                              OverflowError, RecursionError)
WRONG_SHAPE = "malformed record: a field of the wrong type or shape"
Record = TypeVar("Record")


def shape_error(error: Exception) -> str:
    """What went wrong, for the example beside the count (the count itself is :data:`WRONG_SHAPE`)."""
    message = str(error)
    return f"{type(error).__name__}: {message[:120]}" if message else type(error).__name__


def each_record(records: Iterable[tuple[str, Record]], events: Callable[[str, Record], Iterable[RawEvent]],
                report: RecipeReport) -> Iterator[RawEvent]:
    """The events of every ``(where, record)``; a record whose fields break ``events`` is skipped whole (its
    events are gathered first, so none of a half-read record is kept). A UserError still ends the run:
    it is about the file, not one record."""
    for where, record in records:
        try:
            produced = list(events(where, record))
        except UserError:
            raise
        except RECORD_ERRORS as error:
            report.skip(where, WRONG_SHAPE, shape_error(error))
            continue
        yield from produced


def number(value: Any) -> float:
    """A finite float, or ValueError (also for booleans, which JSON parsers happily turn into 0/1)."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {value!r}")
    return result


def optional_number(mapping: dict[str, Any], key: str) -> float | None:
    """``mapping[key]`` as a number when present (ValueError/TypeError when malformed), else None."""
    return number(mapping[key]) if key in mapping else None


# Annotation files are read as ``utf-8-sig``: files saved by Windows tools start with a byte-order mark,
# which plain ``utf-8`` keeps as part of the first record (the first Charades line's video id, the first
# JSONL line's JSON), silently losing it.
ENCODING = "utf-8-sig"


def not_utf8(path: AnyPath, error: UnicodeDecodeError) -> UserError:
    return UserError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); convert it to UTF-8")


def read_json(path: AnyPath) -> Any:
    """A JSON document, or a UserError naming the file (empty, not JSON, not UTF-8)."""
    try:
        text = path.read_text(encoding=ENCODING)
    except UnicodeDecodeError as error:
        raise not_utf8(path, error) from error
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    try:
        return loads_json(text, str(path))  # too deep or a too-long integer: a UserError naming the file
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from error


def text_lines(path: AnyPath, newline: str | None = None) -> Iterator[str]:
    """The lines of a text file, with a UserError naming it when it is not UTF-8."""
    with path.open(encoding=ENCODING, newline=newline) as handle:
        try:
            yield from handle
        except UnicodeDecodeError as error:
            raise not_utf8(path, error) from error


def numbered_lines(path: AnyPath) -> Iterator[tuple[str, str]]:
    """``(file:line, text)`` for every non-blank line of a line-oriented annotation file."""
    for number, line in enumerate(text_lines(path), start=1):
        if line.strip():
            yield f"{path.name}:{number}", line.rstrip("\n")


def json_lines(path: AnyPath, report: RecipeReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file:line, object)`` for every JSONL line that holds a JSON object; others are skipped."""
    for where, line in numbered_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            report.skip(where, "malformed JSON line")
            continue
        except (RecursionError, ValueError) as error:  # one line too deep or with a too-long integer
            reason = json_limit_reason(error)
            if reason is None:
                raise
            report.skip(where, f"malformed JSON line: {reason}")
            continue
        if isinstance(record, dict):
            yield where, record
        else:
            report.skip(where, "malformed line: not a JSON object")


# ---- the video catalogue -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CatalogueEntry:
    path: str
    duration_s: float
    record: VideoRecord | None = None  # a probed record, when the videos themselves were given


class VideoCatalogue:
    """Where durations come from when the annotation file does not carry them: a folder of videos
    (probed), an ingest ``videos.parquet``, a CSV (``id`` plus ``duration``/``duration_s``/``length``,
    optionally ``path``; the Charades CSV works as is) or a JSON mapping ``{id: duration}``."""

    def __init__(self, entries: dict[str, CatalogueEntry | None], root: Path | None = None) -> None:
        self.entries = entries
        self.root = root

    @classmethod
    def empty(cls) -> VideoCatalogue:
        return cls({})

    @classmethod
    def load(cls, source: AnyPath | None, fps: float) -> VideoCatalogue:
        if source is None:
            return cls.empty()
        if source.is_dir():
            return cls._from_folder(source, fps)
        suffix = source.suffix.lower()
        if suffix == ".parquet":
            try:
                return cls(by_name([CatalogueEntry(row["path"], row["duration_s"], VideoRecord.model_validate(row))
                                    for row in iter_rows(source) if row["status"] == VideoStatus.OK]))
            except (KeyError, ValidationError) as error:
                raise UserError(f"{source}: not an ingest videos.parquet ({error})") from error
        if suffix == ".csv":
            try:
                with source.open("rb") as handle:  # a local file or an object, the same way
                    frame = pd.read_csv(handle, dtype=str, keep_default_na=False, encoding=ENCODING)
            except UnicodeDecodeError as error:
                raise not_utf8(source, error) from error
            except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
                raise UserError(f"{source}: not a CSV catalogue ({error})") from error
            duration_column = next((c for c in ("duration", "duration_s", "length") if c in frame.columns), None)
            if "id" not in frame.columns or duration_column is None:
                raise UserError(f"{source}: a CSV catalogue needs an 'id' column and one of duration,"
                                 " duration_s, length")
            entries: dict[str, CatalogueEntry | None] = {}
            for row in frame.itertuples(index=False):
                try:
                    duration = number(getattr(row, duration_column))
                except ValueError:
                    continue
                if duration > 0:
                    path = getattr(row, "path", "") or ""
                    entries[row.id] = CatalogueEntry(path, duration)
            return cls(entries)
        if suffix == ".json":
            data = read_json(source)
            try:
                items = data.items() if isinstance(data, dict) else ((d["id"], d["duration"]) for d in data)
                return cls({str(k): CatalogueEntry("", number(v)) for k, v in items})
            except (KeyError, TypeError, ValueError) as error:
                raise UserError(f"{source}: a JSON catalogue is {{id: duration}} or a list of {{\"id\","
                                f" \"duration\"}} ({type(error).__name__}: {error})") from error
        raise UserError(f"{source}: --videos takes a folder, a .parquet, a .csv or a .json")

    @classmethod
    def _from_folder(cls, folder: AnyPath, fps: float) -> VideoCatalogue:
        backends = available_backends()
        entries = []
        folder = local_videos(folder, "--videos")
        for relative in find_videos(folder):
            record = probe_video(folder, relative, fps, backends)
            if record.status is VideoStatus.OK:
                assert record.duration_s is not None, relative  # an ok video knows its duration
                entries.append(CatalogueEntry(relative, record.duration_s, record))
        return cls(by_name(entries), root=folder.resolve())  # a local Path (local_videos above)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def get(self, key: str) -> CatalogueEntry | None:
        """The entry a source's video name means: exactly that id or path, else the file with that
        name whatever its container (``x.3gp``, ``foo.`` and ``x`` all find ``x.mp4``); None when
        unknown or when several files share the name."""
        for candidate in (key, video_stem(key)):
            if candidate in self.entries:
                return self.entries[candidate]
        return None


def by_name(entries: Iterable[CatalogueEntry]) -> dict[str, CatalogueEntry | None]:
    """Catalogue entries under their relative path and under their name without extension. A name
    that several files share (``x.mp4`` and ``x.webm``) maps to None: picking one would be a guess."""
    index: dict[str, CatalogueEntry | None] = {}
    by_stem: dict[str, list[CatalogueEntry]] = {}
    for entry in entries:
        index[entry.path] = entry
        by_stem.setdefault(video_stem(entry.path), []).append(entry)
    for stem, found in by_stem.items():
        index.setdefault(stem, found[0] if len(found) == 1 else None)
    return index


def default_path(video_key: str, template: str) -> str:
    """The relative path a video is expected at when only its id is known."""
    if is_video_name(video_key):  # already a file name, whatever its container
        return video_key
    return template.format(key=video_key)


def metadata_record(video_key: str, path: str, duration_s: float, fps: float) -> VideoRecord:
    """A video known from annotations only: its frame grid is ``floor(duration * fps)`` frames (the
    reference counts frames from the file; ingest the videos to get exactly its count)."""
    return VideoRecord(
        video_id=video_id_for(path), path=path, status=VideoStatus.OK, duration_s=duration_s,
        sample_fps=fps, num_frames=max(1, math.floor(duration_s * fps + 1e-6)), backend=METADATA_BACKEND,
    )


# ---- running a recipe --------------------------------------------------------------------------------

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


def run_recipe(
    recipe: Recipe, annotations: AnyPath, out_dir: AnyPath, *, videos: AnyPath | None = None, fps: float = 1.0,
    path_template: str = "{key}.mp4", source: str | None = None, replace: bool = False,
) -> RecipeReport:
    """Parse, check and write ``events.parquet`` (sorted by video, in row groups), ``videos.parquet``,
    ``recipe_report.json`` into ``out_dir``. Events carry ``source`` (default: the recipe's name), so
    two files of one format (train and val) can stay apart in a mixture.

    An ``out_dir`` that already holds work is merged into by source (see streamo_data.workdir), unless
    ``replace``. A file from which no event comes is a UserError, raised before anything is written: an
    empty or wrong-format file, or a rerun that forgot ``videos``, must not empty the work directory."""
    catalogue = VideoCatalogue.load(videos, fps)
    report = RecipeReport(recipe=source or recipe.name)
    video_rows: dict[str, dict[str, Any]] = {}
    batches: list[pa.RecordBatch] = []
    pending: list[dict[str, Any]] = []
    seen: set[str] = set()
    schema = EVENT_FEATURES.arrow_schema

    for item in recipe.parse(annotations, report):
        report.read += 1
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
        video_rows.setdefault(record.video_id, to_row(record))
        pending.append(to_row(event))
        if len(pending) >= EVENTS_ROW_GROUP:
            batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
            pending = []
    if pending:
        batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))

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
