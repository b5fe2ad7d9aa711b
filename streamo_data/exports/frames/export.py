"""``streamo export frames``: a release's frames on disk, once per video, and its image-format records.

Two passes over the release's samples (streamed from its shards, so memory grows with the number of
videos, not of samples): the first gathers each video's frame turns, the second, after the frames are
written, renders each sample to the stream format and then to the image format, pointing at its video's
frames. Videos run on Ray (:func:`streamo_data.exports.frames.extract.extract_item`); each finished folder is
complete and marked, so a killed run resumes by skipping them. One export at a time writes into a
frames folder (a lock file in it): two would clear each other's half-built folders.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.exports.frames.extract import (
    FrameEstimate,
    FrameJob,
    FrameResult,
    estimate_item,
    extract_item,
)
from streamo_data.exports.frames.layout import (
    EXTENSIONS,
    LOCK,
    FrameSettings,
    clear_partials,
    folder_name,
    frame_file,
)
from streamo_data.formats.render import iter_record_text, render_sample, to_image_record
from streamo_data.release.read import iter_release_samples
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.store.io import atomic_path, write_text_atomic
from streamo_data.store.storage import AnyPath
from streamo_data.video.timing import Timing, images_for_turns, turn_tolerance

RESULTS = "frames_videos.jsonl"
SUMMARY = "frames_summary.json"
DEFAULT_RECORDS = "images.jsonl"


@dataclass
class VideoEntry:
    """A video as the release uses it: its frame turns (the most any sample has) and where it goes."""

    video: str
    video_id: str
    fps: float
    turns: int
    folder: str = ""
    collision: str = ""  # reference layout: the video whose folder this one's stem already names


@dataclass
class FramesSummary:
    videos: Counter[str] = field(default_factory=Counter)  # by status
    errors: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)
    frames_written: int = 0
    bytes_written: int = 0
    bytes_total: int = 0
    frames_total: int = 0
    drifts: list[float] = field(default_factory=list)
    samples: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    cleared_partials: int = 0
    replaced: int = 0
    records_path: Path | None = None

    def as_json(self) -> dict[str, Any]:
        drifts = [abs(d) for d in self.drifts]
        return {
            "videos": dict(self.videos), "frames_total": self.frames_total, "frames_written": self.frames_written,
            "bytes_total": self.bytes_total, "bytes_written": self.bytes_written,
            "drift_s": {"median": statistics.median(drifts) if drifts else 0.0, "max": max(drifts, default=0.0)},
            "samples": self.samples, "samples_excluded": dict(self.excluded),
            "cleared_partials": self.cleared_partials, "replaced_folders": self.replaced,
            "records": str(self.records_path) if self.records_path else None,
        }


def gather_videos(release_dir: AnyPath, split: str | None, timing: Timing) -> list[VideoEntry]:
    """Every (video, fps) the release's samples use, with its folder; in reference layout, videos whose
    stems collide keep the folder for the first (by path) and are marked."""
    entries: dict[tuple[str, float], VideoEntry] = {}
    for sample in iter_release_samples(release_dir, split):
        key = (sample.video_path, sample.fps)
        entry = entries.get(key)
        if entry is None:
            entries[key] = VideoEntry(sample.video_path, sample.video_id, sample.fps, sample.num_frames)
        else:
            entry.turns = max(entry.turns, sample.num_frames)
    reference_layout = timing == Timing.REFERENCE
    owners: dict[str, VideoEntry] = {}
    for (video, _), entry in sorted(entries.items()):
        stem = os.path.splitext(os.path.basename(video))[0] if reference_layout else entry.video_id
        entry.folder = folder_name(stem, entry.fps, reference_layout)
        owner = owners.setdefault(entry.folder, entry)
        if owner is not entry:
            entry.collision = owner.video if owner.video != video else f"{video} at {owner.fps:g} fps"
    return list(entries.values())


@dataclass(frozen=True)
class FramesRequest:
    """What to export, checked: the release, where its videos and frames are, and how frames are made."""

    release_dir: AnyPath
    video_root: Path
    out_dir: Path
    timing: Timing = Timing.EXACT
    image_format: str = "jpeg"
    quality: int = 90
    max_side: int | None = None
    split: str | None = None
    replace: bool = False
    backend: str = "pyav"  # decodes only the frames that are asked for or referred to: 1.5x decord (BENCHMARKS.md)

    def __post_init__(self) -> None:
        if not self.video_root.is_dir():
            raise MissingInput(f"--video-root {self.video_root}: no such folder")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UserError(f"--out {self.out_dir} is a file, not a frames folder")
        if self.image_format not in EXTENSIONS:
            raise UserError(f"--image-format must be one of {', '.join(EXTENSIONS)}, not {self.image_format!r}")
        if not 1 <= self.quality <= 100:
            raise UserError(f"--quality must be between 1 and 100, not {self.quality}")
        if self.max_side is not None and self.max_side < 16:
            raise UserError(f"--max-side must be at least 16 pixels, not {self.max_side}")

    def settings(self, fps: float) -> FrameSettings:
        return FrameSettings(timing=self.timing.value, fps=fps, format=self.image_format,
                             quality=self.quality if self.image_format == "jpeg" else None, max_side=self.max_side)

    def videos(self) -> list[VideoEntry]:
        entries = gather_videos(self.release_dir, self.split, self.timing)
        if not entries:
            raise UserError(f"{self.release_dir}: no samples{f' in split {self.split!r}' if self.split else ''}")
        return entries

    def jobs(self, entries: list[VideoEntry]) -> list[dict[str, Any]]:
        return [
            FrameJob(video=e.video, full_path=str(self.video_root / e.video), out_dir=str(self.out_dir),
                     folder=e.folder, settings=self.settings(e.fps), turns=e.turns, replace=self.replace,
                     backend=self.backend).model_dump(mode="json")
            for e in entries if not e.collision
        ]


def collision_result(entry: VideoEntry) -> FrameResult:
    return FrameResult(video=entry.video, folder=entry.folder, status="collision",
                       reason=f"its stem names the same reference folder {entry.folder} as {entry.collision}: the"
                              " reference trainer would show that video's frames for this one")


@contextmanager
def exclusive(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s lock for one export, or refuse: a second export would clear the first one's
    half-built folders. The OS drops the lock when its process dies, so a killed run never blocks."""
    lock = FileLock(out_dir / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"--out {out_dir}: another export is writing into it (it holds {out_dir / LOCK});"
                        " wait for it to end") from None
    try:
        yield
    finally:
        lock.release()


def export_frames(request: FramesRequest, records_path: Path | None = None,
                  executor: Executor | None = None) -> FramesSummary:
    """Write every video's frames under ``request.out_dir`` and the image-format records (module doc)."""
    entries = request.videos()
    out_dir = request.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(out_dir):
        return _export_locked(request, entries, records_path, executor)


def _export_locked(request: FramesRequest, entries: list[VideoEntry], records_path: Path | None,
                   executor: Executor | None) -> FramesSummary:
    out_dir = request.out_dir
    summary = FramesSummary(cleared_partials=clear_partials(out_dir))
    results: dict[str, FrameResult] = {}
    for row in run_stage(extract_item, request.jobs(entries), executor or Executor(), "frames"):
        result = FrameResult.model_validate(row)
        results[result.folder] = result
    rows = [*results.values(), *(collision_result(e) for e in entries if e.collision)]
    _tally(summary, rows)
    write_text_atomic(out_dir / RESULTS, "".join(r.model_dump_json() + "\n" for r in rows))
    summary.records_path = records_path or out_dir / DEFAULT_RECORDS
    records = _image_records(request, {(e.video, e.fps): e for e in entries}, results, summary)
    with atomic_path(summary.records_path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for text in iter_record_text(records, as_json_list=summary.records_path.suffix == ".json"):
            handle.write(text)
    write_text_atomic(out_dir / SUMMARY, json.dumps(summary.as_json(), indent=2) + "\n")
    clear_partials(out_dir)  # every worker has ended: what is left there of ours is an empty folder
    return summary


@dataclass
class FramesEstimate:
    videos: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    frames_done: int = 0
    pixels: int = 0
    bytes_per_pixel: float | None = None  # median of the measured frames

    @property
    def bytes(self) -> int | None:
        return None if self.bytes_per_pixel is None else round(self.pixels * self.bytes_per_pixel)


def estimate_frames(request: FramesRequest, executor: Executor | None = None, measured: int = 16) -> FramesEstimate:
    """``--dry-run``: frames to write and disk they take, from metadata and ``measured`` encoded frames
    (one each from videos spread over the release); writes nothing."""
    entries = request.videos()
    jobs = request.jobs(entries)
    every = max(1, len(jobs) // measured)
    for index, job in enumerate(jobs):
        job["measure"] = index % every == 0
    estimate = FramesEstimate()
    ratios: list[float] = []
    for row in run_stage(estimate_item, jobs, executor or Executor(), "frames (dry run)"):
        item = FrameEstimate.model_validate(row)
        estimate.videos[item.status] += 1
        if item.status == "error":
            estimate.errors.append((item.video, item.reason))
        elif item.status == "done":
            estimate.frames_done += item.frames
        else:
            estimate.frames += item.frames
            estimate.pixels += item.frames * item.pixels
            if item.sample_bytes is not None and item.pixels:
                ratios.append(item.sample_bytes / item.pixels)
    for entry in entries:
        if entry.collision:
            estimate.videos["collision"] += 1
            estimate.errors.append((entry.video, collision_result(entry).reason))
    estimate.bytes_per_pixel = statistics.median(ratios) if ratios else None
    return estimate


def _tally(summary: FramesSummary, results: Any) -> None:
    for result in results:
        summary.videos[result.status] += 1
        if result.status in ("error", "collision"):
            summary.errors.append((result.video, result.reason))
            continue
        summary.frames_total += result.frames
        summary.bytes_total += result.bytes
        if result.status == "written":
            summary.frames_written += result.frames
            summary.bytes_written += result.bytes
            summary.replaced += bool(result.replaced)
        if result.drift_s is not None:
            summary.drifts.append(result.drift_s)


def _image_records(request: FramesRequest, by_video: dict[tuple[str, float], VideoEntry],
                   results: dict[str, FrameResult], summary: FramesSummary) -> Iterator[dict[str, Any]]:
    """The image-format record of every sample whose video has its frames; the others are counted."""
    tolerance = turn_tolerance(request.timing)
    for sample in iter_release_samples(request.release_dir, request.split):
        entry = by_video[(sample.video_path, sample.fps)]
        result = None if entry.collision else results.get(entry.folder)
        if result is None or result.status not in ("written", "skipped"):
            summary.excluded["its video has no frames (see the video errors)"] += 1
            continue
        folder = os.path.join(str(request.out_dir), entry.folder)
        names = [os.path.join(folder, frame_file(i, result.extension)) for i in range(result.frames)]
        images = images_for_turns(names, sample.num_frames, tolerance)
        if images is None:
            summary.excluded[f"fewer frames than turns (more than {tolerance} short)"] += 1
            continue
        summary.samples += 1
        yield to_image_record(render_sample(sample, str(request.video_root)), images)
