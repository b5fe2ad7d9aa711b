"""Charades-STA: ``charades_sta_{train,test}.txt``, one query per line: ``VIDEO START END##sentence``.
Durations are not in the file: give the Charades CSV (its ``length`` column), an ingest, or the videos."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CHARADES_END_TOLERANCE_S,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    number,
    numbered_lines,
)
from streamo_data.store.storage import AnyPath


class CharadesSTA:
    name: ClassVar[str] = "charades_sta"
    kind: ClassVar[EventKind] = EventKind.ACTION
    paraphrases: ClassVar[bool] = True  # one Charades action is described by several sentences
    # Charades-STA ends run past the Charades CSV length by up to ~1.5 s (as Charades' own action
    # annotations do): clip them to the video instead of losing 6% of valid lines.
    end_tolerance_s: ClassVar[float] = CHARADES_END_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("test",),
                                      files=((r"train", "train"), (r"test", "test")))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from each_record(numbered_lines(path), lambda where, line: self._event(where, line, report), report)

    def _event(self, where: str, line: str, report: RecipeReport) -> Iterator[RawEvent]:
        head, separator, sentence = line.partition("##")
        parts = head.split()
        if not separator or len(parts) != 3:
            report.skip(where, "malformed line: expected 'VIDEO START END##sentence'")
            return
        try:
            start, end = number(parts[1]), number(parts[2])
        except ValueError:
            report.skip(where, "malformed timestamp")
            return
        if not sentence.strip():
            report.skip(where, "empty sentence")
            return
        yield RawEvent(parts[0], start, end, sentence, self.kind, where=where)
