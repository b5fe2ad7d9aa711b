"""HACS Segments: ``HACS_segments_v1.1.1.json`` (http://hacs.csail.mit.edu/, github.com/hangzhaomit/HACS-dataset),
``{"database": {YOUTUBE_ID: {"subset", "duration", "url", "annotations": [{"label", "segment": [start, end]}]}}}``
with times in seconds. Each segment becomes an action event labelled with its class name. Videos are named
``v_{YOUTUBE_ID}`` as the HACS downloader saves them (``v_{id}.mp4``). Entries of the testing subset carry no
annotations and are counted as such."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from streamo_data.errors import UserError
from streamo_data.recipes.base import CLIP_TOLERANCE_S, RawEvent, RecipeReport, number, optional_number, read_json
from streamo_data.schema import EventKind


class HACSSegments:
    name: ClassVar[str] = "hacs"
    kind: ClassVar[EventKind] = EventKind.ACTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S

    def parse(self, path: Path, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        database = data.get("database") if isinstance(data, dict) else None
        if not isinstance(database, dict):
            raise UserError(f"{path}: HACS Segments is an object with a \"database\" mapping of videos")
        for video_id, entry in database.items():
            where = f"{path.name}:{video_id}"
            if not isinstance(entry, dict) or "annotations" not in entry:
                report.skip(where, "missing field: annotations")
                continue
            try:
                duration = optional_number(entry, "duration")
            except (TypeError, ValueError):
                report.skip(where, "malformed duration")
                continue
            annotations = entry["annotations"]
            if not isinstance(annotations, list):
                report.skip(where, "malformed annotations: not a list")
                continue
            if not annotations:
                report.skip(where, "no annotated segment (testing subset)")
                continue
            for index, annotation in enumerate(annotations):
                here = f"{where}[{index}]"
                if not isinstance(annotation, dict) or "label" not in annotation or "segment" not in annotation:
                    report.skip(here, "missing field: label/segment")
                    continue
                try:
                    segment = annotation["segment"]
                    if len(segment) != 2:
                        raise ValueError("a segment is [start, end]")
                    start, end = number(segment[0]), number(segment[1])
                except (TypeError, ValueError):
                    report.skip(here, "malformed segment")
                    continue
                label = str(annotation["label"]).strip()
                if not label:
                    report.skip(here, "empty label")
                    continue
                yield RawEvent(f"v_{video_id}", start, end, label, self.kind, duration_s=duration, where=here)
