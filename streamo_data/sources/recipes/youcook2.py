"""YouCook2: ``youcookii_annotations_trainval.json``,
``{"database": {video_id: {"duration": s, "subset": ..., "annotations": [{"segment": [s, e], "sentence": ...}]}}}``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    number,
    optional_number,
    read_json,
)
from streamo_data.store.storage import AnyPath


def iter_database(path: AnyPath, report: RecipeReport, items_key: str, text_key: str, kind: EventKind,
                  name: str, video_name: Callable[[str], str] = str) -> Iterator[RawEvent]:
    """The layout YouCook2, COIN and HACS Segments share: database -> video -> list of {segment,
    <text_key>}; ``video_name`` maps a database key to the video's name (HACS saves ``v_{id}``)."""
    data = read_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise UserError(f"{path}: expected a JSON object with a 'database' mapping ({name})")

    def events(where: str, video_key: str, entry: Any) -> Iterator[RawEvent]:
        if not isinstance(entry, dict) or items_key not in entry:
            report.skip(where, f"missing field: {items_key}")
            return
        try:
            duration = optional_number(entry, "duration")
        except (TypeError, ValueError):
            report.skip(where, "malformed duration")
            return
        subset = entry.get("subset")
        subset = str(subset) if subset is not None else None
        items = entry[items_key]
        if not isinstance(items, list):
            report.skip(where, f"malformed {items_key}: not a list")
            return
        if not items:
            report.skip(where, "no annotated segment")
            return
        for index, item in enumerate(items):
            at = f"{where}[{index}]"
            if not isinstance(item, dict) or "segment" not in item or text_key not in item:
                report.skip(at, f"missing field: segment/{text_key}")
                continue
            try:
                start, end = number(item["segment"][0]), number(item["segment"][1])
            except (TypeError, ValueError, IndexError, KeyError):
                report.skip(at, "malformed segment")
                continue
            text = item[text_key]
            if not isinstance(text, str) or not text.strip():
                report.skip(at, f"empty {text_key}")
                continue
            yield RawEvent(video_name(video_key), start, end, text, kind, duration_s=duration, where=at,
                           subset=subset)

    records = ((f"{path.name}:{key}", (key, entry)) for key, entry in database.items())
    yield from each_record(records, lambda where, record: events(where, *record), report)


class YouCook2:
    name: ClassVar[str] = "youcook2"
    kind: ClassVar[EventKind] = EventKind.STEP
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    # `subset` of each video; the trainval file holds training and validation, the test file testing
    splits: ClassVar[Splits] = Splits(train=("training",), held_out=("validation", "testing"))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from iter_database(path, report, "annotations", "sentence", self.kind, self.name)
