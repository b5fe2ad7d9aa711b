"""COIN: ``COIN.json``, ``{"database": {video_id: {"class", "subset", "duration", "annotation":
[{"id", "segment": [s, e], "label"}]}}}``: each labelled step becomes a step event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import CLIP_TOLERANCE_S, RawEvent, RecipeReport, Splits
from streamo_data.sources.recipes.youcook2 import iter_database
from streamo_data.store.storage import AnyPath


class COIN:
    name: ClassVar[str] = "coin"
    kind: ClassVar[EventKind] = EventKind.STEP
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("training",), held_out=("testing",))  # COIN.json's `subset`

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from iter_database(path, report, "annotation", "label", self.kind, self.name)
