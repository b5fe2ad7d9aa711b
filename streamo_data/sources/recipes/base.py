"""What every recipe shares: parsed annotations, skip accounting, and reading files as published.

A recipe only *parses* its source's published file into :class:`RawEvent` items, reporting each line
it cannot use with a named reason. Everything else happens once for every source: finding durations
(:mod:`streamo_data.sources.recipes.catalogue`), and checking times against them, making Event and VideoRecord
rows and writing sorted Parquet (:mod:`streamo_data.sources.recipes.run`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import (
    EventKind,
    Provenance,
)
from streamo_data.store.io import json_limit_reason, loads_json
from streamo_data.store.storage import AnyPath

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
    subset: str | None = None  # the official subset the record names (COIN's "training"); None: the file's


@dataclass(frozen=True)
class Splits:
    """A source's official subsets, as its files name them. A recipe reads its training subsets unless told
    otherwise, because validation and test videos are what benchmarks are built from: a corpus that trains
    on them makes every score on those benchmarks a measure of memory.

    A subset comes from the record (COIN, YouCook2, HACS carry ``subset``), else from the file's published
    name (ActivityNet's ``val_1.json``, Charades-STA's ``charades_sta_test.txt``), else from the source
    itself (``every_item``: a source that is training data only, like an instruction-tuning set)."""

    train: tuple[str, ...]
    held_out: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (regular expression the file name matches, its subset), in order
    every_item: str | None = None

    @property
    def known(self) -> tuple[str, ...]:
        return self.train + self.held_out

    def of_file(self, name: str) -> str | None:
        for pattern, subset in self.files:
            if re.search(pattern, name):
                return subset
        return self.every_item


TRAINING_ONLY = Splits(train=("train",), every_item="train")


@dataclass
class RecipeReport:
    """Counts of what was read, written and skipped (with its reason), plus a few examples."""

    recipe: str
    read: int = 0
    events: int = 0
    videos: int = 0
    clipped: int = 0
    subsets: list[str] = field(default_factory=list)  # the subsets read ("all": every one)
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
        return {"recipe": self.recipe, "subsets": self.subsets, "read": self.read, "events": self.events,
                "videos": self.videos,
                "clipped_to_duration": self.clipped, "skipped": dict(self.skipped), "examples": self.examples}


class Recipe(Protocol):
    name: ClassVar[str]
    kind: ClassVar[EventKind]
    paraphrases: ClassVar[bool]  # the source describes one moment several times (see streamo_data.core.moments)
    end_tolerance_s: ClassVar[float]  # an end this far past the duration is clipped to it, not skipped
    splits: ClassVar[Splits]  # the source's official subsets, and which are training data

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
