"""TACoS as distributed with 2D-TAN and MS-2D-TAN (github.com/microsoft/2D-TAN, ``data/TACoS/{train,val,test}.json``):
``{VIDEO: {"num_frames", "fps", "timestamps": [[start_frame, end_frame], ...], "sentences": [...]}}``. Times are
frame indices: seconds are ``frame / fps`` and the duration is ``num_frames / fps``, exactly as 2D-TAN's loader
reads them. Keys are file names (``s13-d21.avi``). Several annotators describe the same cooking actions, so a
span told twice is one moment (paraphrases)."""

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
    read_json,
)
from streamo_data.store.storage import AnyPath


class TACoS:
    name: ClassVar[str] = "tacos"
    kind: ClassVar[EventKind] = EventKind.ACTION
    paraphrases: ClassVar[bool] = True
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("val", "test"),
                                      files=((r"train", "train"), (r"val", "val"), (r"test", "test")))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: TACoS (2D-TAN) is an object mapping each video to its annotations")
        records = ((f"{path.name}:{video}", (video, entry)) for video, entry in data.items())
        yield from each_record(records, lambda where, record: self._events(where, *record, report), report)

    def _events(self, where: str, video: str, entry: Any, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(entry, dict) or any(k not in entry for k in ("num_frames", "fps", "timestamps",
                                                                      "sentences")):
            report.skip(where, "missing field: num_frames/fps/timestamps/sentences")
            return
        try:
            fps, num_frames = number(entry["fps"]), number(entry["num_frames"])
            if fps <= 0 or num_frames <= 0:
                raise ValueError("fps and num_frames must be positive")
        except (TypeError, ValueError):
            report.skip(where, "malformed fps or num_frames")
            return
        timestamps, sentences = entry["timestamps"], entry["sentences"]
        if not isinstance(timestamps, list) or not isinstance(sentences, list) or len(timestamps) != len(
                sentences):
            report.skip(where, "timestamps and sentences differ in length")
            return
        for index, (span, sentence) in enumerate(zip(timestamps, sentences, strict=True)):
            here = f"{where}[{index}]"
            try:
                if not isinstance(span, list) or len(span) != 2:
                    raise ValueError("a timestamp is [start_frame, end_frame]")
                start, end = number(span[0]) / fps, number(span[1]) / fps
            except (TypeError, ValueError):
                report.skip(here, "malformed timestamp")
                continue
            if not isinstance(sentence, str) or not sentence.strip():
                report.skip(here, "empty sentence")
                continue
            yield RawEvent(str(video), start, end, sentence, self.kind, duration_s=num_frames / fps, where=here)
