"""QVHighlights: ``highlight_{train,val}_release.jsonl``, one query per line with ``qid``, ``query``,
``vid``, ``duration``, ``relevant_windows`` ([[start, end], ...]) and saliency scores. Each relevant
window becomes a highlight event carrying the query; the saliency scores are not needed for the
streaming tasks and are not carried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    json_lines,
    number,
)
from streamo_data.store.storage import AnyPath


class QVHighlights:
    name: ClassVar[str] = "qvhighlights"
    kind: ClassVar[EventKind] = EventKind.HIGHLIGHT
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("train",), held_out=("val", "test"),
                                      files=((r"_train", "train"), (r"_val", "val"), (r"_test", "test")))

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from each_record(json_lines(path, report), lambda where, record: self._events(where, record, report),
                               report)

    def _events(self, where: str, record: dict[str, Any], report: RecipeReport) -> Iterator[RawEvent]:
        missing = [k for k in ("query", "vid", "duration", "relevant_windows") if k not in record]
        if missing:
            report.skip(where, f"missing field: {missing[0]}")
            return
        try:
            duration = number(record["duration"])
            windows = [(number(w[0]), number(w[1])) for w in record["relevant_windows"]]
        except (TypeError, ValueError, IndexError, KeyError):
            report.skip(where, "malformed duration or window")
            return
        if not str(record["query"]).strip():
            report.skip(where, "empty query")
            return
        for index, (start, end) in enumerate(windows):
            yield RawEvent(str(record["vid"]), start, end, str(record["query"]), self.kind,
                           duration_s=duration, where=f"{where}[{index}]")
