"""The video catalogue: where a source's videos are and how long each lasts (a videos folder, an ingest
videos.parquet, the Charades CSV or a JSON of durations), for the sources whose annotations give none."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from streamo_data.core.errors import UserError
from streamo_data.core.schema import (
    METADATA_BACKEND,
    VideoRecord,
    VideoStatus,
)
from streamo_data.core.video_identity import video_stem
from streamo_data.sources.recipes.base import ENCODING, not_utf8, number, read_json
from streamo_data.store.storage import AnyPath, local_videos
from streamo_data.store.tables import iter_rows
from streamo_data.video.backends import available_backends
from streamo_data.video.probe import find_videos, is_video_name, probe_video, video_id_for


@dataclass(frozen=True)
class CatalogueEntry:
    path: str
    duration_s: float
    record: VideoRecord | None = None  # a probed record, when the videos themselves were given


class VideoCatalogue:
    """Where durations come from when the annotation file does not carry them: a folder of videos
    (probed), an ingest ``videos.parquet``, a CSV (``id`` plus ``duration``/``duration_s``/``length``,
    optionally ``path``; the Charades CSV works as is) or a JSON mapping ``{id: duration}``."""

    def __init__(self, entries: dict[str, CatalogueEntry | None], root: Path | None = None) -> None:
        self.entries = entries
        self.root = root

    @classmethod
    def empty(cls) -> VideoCatalogue:
        return cls({})

    @classmethod
    def load(cls, source: AnyPath | None, fps: float) -> VideoCatalogue:
        if source is None:
            return cls.empty()
        if source.is_dir():
            return cls._from_folder(source, fps)
        suffix = source.suffix.lower()
        if suffix == ".parquet":
            try:
                return cls(by_name([CatalogueEntry(row["path"], row["duration_s"], VideoRecord.model_validate(row))
                                    for row in iter_rows(source) if row["status"] == VideoStatus.OK]))
            except (KeyError, ValidationError) as error:
                raise UserError(f"{source}: not an ingest videos.parquet ({error})") from error
        if suffix == ".csv":
            try:
                with source.open("rb") as handle:  # a local file or an object, the same way
                    frame = pd.read_csv(handle, dtype=str, keep_default_na=False, encoding=ENCODING)
            except UnicodeDecodeError as error:
                raise not_utf8(source, error) from error
            except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
                raise UserError(f"{source}: not a CSV catalogue ({error})") from error
            duration_column = next((c for c in ("duration", "duration_s", "length") if c in frame.columns), None)
            if "id" not in frame.columns or duration_column is None:
                raise UserError(f"{source}: a CSV catalogue needs an 'id' column and one of duration,"
                                 " duration_s, length")
            entries: dict[str, CatalogueEntry | None] = {}
            for row in frame.itertuples(index=False):
                try:
                    duration = number(getattr(row, duration_column))
                except ValueError:
                    continue
                if duration > 0:
                    path = getattr(row, "path", "") or ""
                    entries[row.id] = CatalogueEntry(path, duration)
            return cls(entries)
        if suffix == ".json":
            data = read_json(source)
            try:
                items = data.items() if isinstance(data, dict) else ((d["id"], d["duration"]) for d in data)
                return cls({str(k): CatalogueEntry("", number(v)) for k, v in items})
            except (KeyError, TypeError, ValueError) as error:
                raise UserError(f"{source}: a JSON catalogue is {{id: duration}} or a list of {{\"id\","
                                f" \"duration\"}} ({type(error).__name__}: {error})") from error
        raise UserError(f"{source}: --videos takes a folder, a .parquet, a .csv or a .json")

    @classmethod
    def _from_folder(cls, folder: AnyPath, fps: float) -> VideoCatalogue:
        backends = available_backends()
        entries = []
        folder = local_videos(folder, "--videos")
        for relative in find_videos(folder):
            record = probe_video(folder, relative, fps, backends)
            if record.status is VideoStatus.OK:
                entries.append(CatalogueEntry(relative, record.grid.duration_s, record))
        return cls(by_name(entries), root=folder.resolve())  # a local Path (local_videos above)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def get(self, key: str) -> CatalogueEntry | None:
        """The entry a source's video name means: exactly that id or path, else the file with that
        name whatever its container (``x.3gp``, ``foo.`` and ``x`` all find ``x.mp4``); None when
        unknown or when several files share the name."""
        if not self.entries:  # no --videos: the common case of a build from metadata, once per item
            return None
        for candidate in (key, video_stem(key)):
            if candidate in self.entries:
                return self.entries[candidate]
        return None


def by_name(entries: Iterable[CatalogueEntry]) -> dict[str, CatalogueEntry | None]:
    """Catalogue entries under their relative path and under their name without extension. A name
    that several files share (``x.mp4`` and ``x.webm``) maps to None: picking one would be a guess."""
    index: dict[str, CatalogueEntry | None] = {}
    by_stem: dict[str, list[CatalogueEntry]] = {}
    for entry in entries:
        index[entry.path] = entry
        by_stem.setdefault(video_stem(entry.path), []).append(entry)
    for stem, found in by_stem.items():
        index.setdefault(stem, found[0] if len(found) == 1 else None)
    return index


@functools.lru_cache(maxsize=1 << 16)  # per video, not per item: is_video_name parses a path
def default_path(video_key: str, template: str) -> str:
    """The relative path a video is expected at when only its id is known."""
    if is_video_name(video_key):  # already a file name, whatever its container
        return video_key
    return template.format(key=video_key)


@functools.lru_cache(maxsize=1 << 16)  # a video has several items; its record is frozen, so they share one
def metadata_record(video_key: str, path: str, duration_s: float, fps: float) -> VideoRecord:
    """A video known from annotations only: its frame grid is ``floor(duration * fps)`` frames (the
    reference counts frames from the file; ingest the videos to get exactly its count)."""
    return VideoRecord(
        video_id=video_id_for(path), path=path, status=VideoStatus.OK, duration_s=duration_s,
        sample_fps=fps, num_frames=max(1, math.floor(duration_s * fps + 1e-6)), backend=METADATA_BACKEND,
    )


