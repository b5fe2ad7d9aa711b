"""The generic events format, for any source without a recipe of its own.

JSONL, one event per line, or CSV with a header; the same fields either way:

    video       video id or relative path (required)
    start       start time, seconds (required)
    end         end time, seconds (required)
    text        caption / action / step / question text (required)
    kind        caption | action | step | highlight | narration | qa   (default: caption)
    duration    video duration, seconds (optional if --videos gives durations)
    answer      the answer, for kind=qa

Example line: {"video": "kitchen/001.mp4", "start": 3.5, "end": 9, "text": "A person cracks an egg.",
"kind": "action", "duration": 62.0}
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    TRAINING_ONLY,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    json_lines,
    number,
    optional_number,
    text_lines,
)
from streamo_data.store.storage import AnyPath

REQUIRED = ("video", "start", "end", "text")


class GenericEvents:
    name: ClassVar[str] = "generic"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = TRAINING_ONLY  # a file of your own: hold out what you evaluate on yourself

    def _records(self, path: AnyPath, report: RecipeReport) -> Iterator[tuple[str, dict[str, Any]]]:
        if path.suffix.lower() == ".csv":
            for line_number, row in enumerate(csv.DictReader(text_lines(path, newline="")), start=2):
                yield f"{path.name}:{line_number}", {k: v for k, v in row.items() if v not in ("", None)}
            return
        yield from json_lines(path, report)

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from each_record(self._records(path, report), lambda where, record: self._event(where, record, report),
                               report)

    def _event(self, where: str, record: dict[str, Any], report: RecipeReport) -> Iterator[RawEvent]:
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            report.skip(where, f"missing field: {missing[0]}")
            return
        try:
            start, end = number(record["start"]), number(record["end"])
            duration = optional_number(record, "duration")
            kind = EventKind(record.get("kind", "caption"))
        except ValueError as error:
            report.skip(where, f"malformed value: {error}")
            return
        except TypeError:
            report.skip(where, "malformed value: a time or kind of the wrong type")
            return
        yield RawEvent(str(record["video"]), start, end, str(record["text"]), kind, duration_s=duration,
                       answer=record.get("answer"), where=where)
