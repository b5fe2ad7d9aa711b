"""ActivityNet Captions: ``train.json`` / ``val_1.json`` / ``val_2.json``, a dict
``{video_id: {"duration": s, "timestamps": [[start, end], ...], "sentences": [...]}}``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from streamo_data.errors import UserError
from streamo_data.recipes.base import CLIP_TOLERANCE_S, RawEvent, RecipeReport, number, optional_number, read_json
from streamo_data.schema import EventKind


class ActivityNetCaptions:
    name: ClassVar[str] = "activitynet_captions"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S

    def parse(self, path: Path, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: ActivityNet Captions is a JSON object keyed by video id")
        for video_key, entry in data.items():
            where = f"{path.name}:{video_key}"
            if not isinstance(entry, dict) or "timestamps" not in entry or "sentences" not in entry:
                report.skip(where, "missing field: timestamps/sentences")
                continue
            try:
                duration = optional_number(entry, "duration")
            except (TypeError, ValueError):
                report.skip(where, "malformed duration")
                continue
            timestamps, sentences = entry["timestamps"], entry["sentences"]
            if len(timestamps) != len(sentences):
                report.skip(where, "timestamps and sentences differ in length")
                continue
            for index, (span, sentence) in enumerate(zip(timestamps, sentences, strict=True)):
                item = f"{where}[{index}]"
                try:
                    start, end = number(span[0]), number(span[1])
                except (TypeError, ValueError, IndexError):
                    report.skip(item, "malformed timestamp")
                    continue
                if not isinstance(sentence, str) or not sentence.strip():
                    report.skip(item, "empty sentence")
                    continue
                yield RawEvent(video_key, start, end, sentence, self.kind, duration_s=duration, where=item)
