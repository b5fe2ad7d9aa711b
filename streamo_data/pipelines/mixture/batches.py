"""Reading one batch of videos from every source, shared by the plan and the build passes.

A batch is a range ``[low, high]`` of video ids; each worker reads only that range of every source's
``videos.parquet`` and ``events.parquet`` (row-group statistics skip the rest), so memory stays flat as the
corpus grows. The selection helpers say which events a task's ``sources:`` take.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streamo_data.core.schema import Event, VideoRecord
from streamo_data.corpus.tasks.base import visible_events
from streamo_data.store.storage import AnyPath, location
from streamo_data.store.tables import from_row, read_table


def _in_range(path: AnyPath, low: str, high: str, version: str | None) -> list[dict[str, Any]]:
    """Rows whose video_id lies in [low, high]; row-group statistics skip the rest of the file. With the
    plan's stamp as ``version``, a source on an object store is downloaded once per worker process."""
    return read_table(path, filters=[("video_id", ">=", low), ("video_id", "<=", high)], snapshot=version).to_pylist()


def load_batch(source_dirs: list[str], low: str, high: str,
               version: str | None = None) -> list[tuple[VideoRecord, list[Event]]]:
    """Every video in [low, high] with the events of every source about it, in video id order (all of
    them; :func:`visible_batch` keeps those the stream shows)."""
    videos: dict[str, VideoRecord] = {}
    events: dict[str, list[Event]] = defaultdict(list)
    for folder in source_dirs:
        for row in _in_range(location(folder) / "videos.parquet", low, high, version):
            videos.setdefault(row["video_id"], from_row(VideoRecord, row))
        for row in _in_range(location(folder) / "events.parquet", low, high, version):
            events[row["video_id"]].append(from_row(Event, row))
    return [(videos[v], events.get(v, [])) for v in sorted(videos)]


def visible_batch(source_dirs: list[str], low: str, high: str,
                  version: str | None = None) -> tuple[list[tuple[VideoRecord, list[Event]]], int]:
    """load_batch with only the events the stream shows, and how many it never shows (counted once,
    not once per task)."""
    batch, unseen = [], 0
    for video, events in load_batch(source_dirs, low, high, version):
        shown, hidden = visible_events(video, events)
        batch.append((video, shown))
        unseen += len(hidden)
    return batch, unseen


def selected_by(source: str, names: set[str] | list[str]) -> bool:
    """Whether an event's ``source`` is one the names select. A source's name selects its recipe's events
    only; ``<source>:<annotator>`` selects that annotator's, QA types included (``koala:qa`` takes
    ``koala:qa:offline``); ``koala:qa:offline`` selects that type only."""
    parts = source.split(":")
    return source in names or any(":".join(parts[:k]) in names for k in range(2, len(parts)))


def allowed_events(events: list[Event], sources: list[str] | None) -> list[Event]:
    """The events a task's ``sources:`` take (None: all of them)."""
    if sources is None:
        return events
    names = set(sources)
    verdict: dict[str, bool] = {}  # a video's events come from a few sources: decide each source once
    kept = []
    for event in events:
        if event.source not in verdict:
            verdict[event.source] = selected_by(event.source, names)
        if verdict[event.source]:
            kept.append(event)
    return kept
