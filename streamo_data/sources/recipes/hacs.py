"""HACS Segments: ``HACS_segments_v1.1.1.json`` (http://hacs.csail.mit.edu/, github.com/hangzhaomit/HACS-dataset),
``{"database": {YOUTUBE_ID: {"subset", "duration", "url", "annotations": [{"label", "segment": [start, end]}]}}}``
with times in seconds. Each segment becomes an action event labelled with its class name. Videos are named
``v_{YOUTUBE_ID}`` as the HACS downloader saves them (``v_{id}.mp4``). Entries of the testing subset carry no
annotations and are counted as such."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import CLIP_TOLERANCE_S, RawEvent, RecipeReport, Splits
from streamo_data.sources.recipes.youcook2 import iter_database
from streamo_data.store.storage import AnyPath


class HACSSegments:
    name: ClassVar[str] = "hacs"
    kind: ClassVar[EventKind] = EventKind.ACTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = Splits(train=("training",), held_out=("validation", "testing"))  # `subset`

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        yield from iter_database(path, report, "annotations", "label", self.kind, "HACS Segments",
                                 video_name=lambda key: f"v_{key}")
