"""ActivityNet Captions: ``train.json`` / ``val_1.json`` / ``val_2.json``, a dict
``{video_id: {"duration": s, "timestamps": [[start, end], ...], "sentences": [...]}}``."""

from __future__ import annotations

from collections.abc import Iterator
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


class ActivityNetCaptions:
    name: ClassVar[str] = "activitynet_captions"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    # the published files: train.json, val_1.json, val_2.json (the test annotations were never released)
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("val_1", "val_2"),
                                      files=((r"val_?1", "val_1"), (r"val_?2", "val_2"), (r"train", "train")))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: ActivityNet Captions is a JSON object keyed by video id")
        records = ((f"{path.name}:{key}", (key, entry)) for key, entry in data.items())
        yield from each_record(records, lambda where, record: self._events(where, *record, report), report)

    def _events(self, where: str, video_key: str, entry: Any, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(entry, dict) or "timestamps" not in entry or "sentences" not in entry:
            report.skip(where, "missing field: timestamps/sentences")
            return
        try:
            duration = optional_number(entry, "duration")
        except (TypeError, ValueError):
            report.skip(where, "malformed duration")
            return
        timestamps, sentences = entry["timestamps"], entry["sentences"]
        if not isinstance(timestamps, list) or not isinstance(sentences, list):
            report.skip(where, "malformed timestamps/sentences: not lists")
            return
        if len(timestamps) != len(sentences):
            report.skip(where, "timestamps and sentences differ in length")
            return
        for index, (span, sentence) in enumerate(zip(timestamps, sentences, strict=True)):
            item = f"{where}[{index}]"
            try:
                start, end = number(span[0]), number(span[1])
            except (TypeError, ValueError, IndexError, KeyError):
                report.skip(item, "malformed timestamp")
                continue
            if not isinstance(sentence, str) or not sentence.strip():
                report.skip(item, "empty sentence")
                continue
            yield RawEvent(video_key, start, end, sentence, self.kind, duration_s=duration, where=item)
