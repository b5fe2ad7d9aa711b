"""The videos a release needs, which of them a video root holds in a usable state, and what that leaves
trainable.

A release built from annotations alone names videos it never opened; a researcher has to fetch them from
each source's own distribution, and some will be gone (taken-down YouTube videos), truncated or cut
shorter than the annotations say. This lists, per source, every video the release uses with its upstream
id, expected duration and the latest time a sample annotates in it; under a video root it says whether
each is present, missing, zero-byte, unreadable or shorter than that latest time, and which share of each
task's samples can be trained on with what is there. The missing list is written for a downloader.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.core.video_identity import video_stem
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import read_table
from streamo_data.video.probe import opencv_metadata

SHORT_TOLERANCE_S = 0.5  # a file this much shorter than the latest annotated time is still usable
USABLE = "present"
TOO_SHORT = "too short"
STATUSES = (USABLE, "missing", "zero-byte", "unreadable", TOO_SHORT)


def covers(duration_s: float, latest_s: float) -> bool:
    """Whether a video that really lasts ``duration_s`` holds annotations up to ``latest_s``: the one rule
    for "too short", so this report's trainable share and the samples training leaves out agree."""
    return duration_s + SHORT_TOLERANCE_S >= latest_s


@dataclass
class NeededVideo:
    source: str
    path: str  # relative to the video root, as the samples name it
    id: str  # the upstream id (file stem: a YouTube id, `v_<id>`, a Charades id)
    expected_duration_s: float
    latest_time_s: float
    samples: Counter[str] = field(default_factory=Counter)  # task -> samples on this video
    status: str | None = None  # None: no video root checked
    detail: str = ""
    found_duration_s: float | None = None  # what the file under the root lasts, when it opens
    # (task, latest annotated time) of each sample: a too-short file still serves the samples it covers
    sample_times: list[tuple[str, float]] = field(default_factory=list, repr=False)

    def trainable_samples(self) -> Counter[str]:
        """task -> samples on this video that can be trained on with the file found."""
        if self.status == USABLE:
            return Counter(self.samples)
        if self.status == TOO_SHORT and self.found_duration_s is not None:
            duration = self.found_duration_s
            return Counter(task for task, latest in self.sample_times if covers(duration, latest))
        return Counter()


@dataclass
class VideoReport:
    videos: list[NeededVideo]
    video_root: str | None

    def by_source(self) -> dict[str, Counter[str]]:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for video in self.videos:
            counts[video.source][video.status or "needed"] += 1
        return dict(sorted(counts.items()))

    def trainable(self) -> dict[str, tuple[int, int]]:
        """task -> (samples whose video is usable and lasts to their latest annotated time, samples)."""
        result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for video in self.videos:
            usable = video.trainable_samples()
            for task, count in video.samples.items():
                result[task][1] += count
                result[task][0] += usable[task]
        return {task: (usable, total) for task, (usable, total) in sorted(result.items())}

    def unusable(self) -> list[NeededVideo]:
        return [video for video in self.videos if video.status not in (None, USABLE)]

    def as_dict(self) -> dict[str, Any]:
        return {"video_root": self.video_root, "by_source": {s: dict(c) for s, c in self.by_source().items()},
                "trainable": {t: {"usable": u, "samples": n} for t, (u, n) in self.trainable().items()},
                "videos": [{**{k: value for k, value in asdict(v).items() if k != "sample_times"},
                            "samples": dict(v.samples)} for v in self.videos]}


def latest_time(questions: list[dict[str, Any]], responses: list[dict[str, Any]]) -> float:
    times = [q["time"] for q in questions] + [t for r in responses for t in (r.get("end_time"), r.get("time"))
                                              if t is not None]
    return max(times, default=0.0)


def needed_videos(release: AnyPath) -> list[NeededVideo]:
    """Every distinct video of the release's samples, with what they ask of it."""
    videos: dict[tuple[str, str], NeededVideo] = {}
    columns = ["task", "source", "video_path", "duration_s", "questions", "responses"]
    for shard in read_manifest(release).shards:
        for row in read_table(release / shard.path, columns=columns).to_pylist():
            key = (row["source"], row["video_path"])
            video = videos.get(key)
            if video is None:
                video = videos[key] = NeededVideo(row["source"], row["video_path"], video_stem(row["video_path"]),
                                                  row["duration_s"], 0.0)
            latest = latest_time(row["questions"], row["responses"])
            video.latest_time_s = max(video.latest_time_s, latest)
            video.samples[row["task"]] += 1
            video.sample_times.append((row["task"], latest))
    return sorted(videos.values(), key=lambda v: (v.source, v.path))


def needed_by_sources(source_dirs: list[AnyPath]) -> list[NeededVideo]:
    """Before a build: every video of a mixture's sources (their recipes' ``videos.parquet``), with the latest
    time an event of it annotates; samples are not made yet, so each video counts its events (as task
    ``events``)."""
    videos: list[NeededVideo] = []
    for folder in source_dirs:
        ends: dict[str, list[float]] = defaultdict(list)
        for row in read_table(folder / "events.parquet", columns=["video_id", "end_s"]).to_pylist():
            ends[row["video_id"]].append(row["end_s"])
        for row in read_table(folder / "videos.parquet", columns=["video_id", "path", "duration_s"]).to_pylist():
            if row["video_id"] in ends:
                times = ends[row["video_id"]]
                videos.append(NeededVideo(folder.name, row["path"], video_stem(row["path"]), row["duration_s"] or 0.0,
                                          max(times), Counter({"events": len(times)}),
                                          sample_times=[("events", end) for end in times]))
    return sorted(videos, key=lambda v: (v.source, v.path))


def check_video(video: NeededVideo, root: Path) -> None:
    """The video's status under ``root``; OpenCV is what the reference trainer and our converters count with."""
    path = root / video.path
    if not os.path.exists(path):
        video.status, video.detail = "missing", str(path)
        return
    if os.path.getsize(path) == 0:
        video.status, video.detail = "zero-byte", str(path)
        return
    try:
        frames, fps, _, _ = opencv_metadata(str(path))
    except Exception as error:  # noqa: BLE001 - any failure to open is the file's reason
        video.status, video.detail = "unreadable", str(error)
        return
    if frames <= 0 or fps <= 0:
        video.status, video.detail = "unreadable", f"{frames} frames at {fps:g} fps"
        return
    duration = video.found_duration_s = frames / fps
    if not covers(duration, video.latest_time_s):
        video.status = TOO_SHORT
        video.detail = f"{duration:.1f} s, annotated up to {video.latest_time_s:.1f} s"
        return
    video.status = USABLE


def check_release_videos(release: AnyPath, video_root: Path | None, threads: int = 8) -> VideoReport:
    return check_videos(needed_videos(release), video_root, threads)


def check_videos(videos: list[NeededVideo], video_root: Path | None, threads: int = 8) -> VideoReport:
    if video_root is not None:
        with ThreadPoolExecutor(max_workers=threads) as pool:  # OpenCV releases the GIL while it opens a file
            list(pool.map(lambda video: check_video(video, video_root), videos))
    return VideoReport(videos, str(video_root) if video_root is not None else None)


def missing_list(report: VideoReport, as_jsonl: bool) -> str:
    """The videos to fetch (missing or unusable; all of them when no root was checked): JSONL with source,
    id, path, status and expected duration, or one relative path a line."""
    wanted = report.unusable() if report.video_root is not None else report.videos
    if as_jsonl:
        return "".join(json.dumps({"source": v.source, "id": v.id, "path": v.path, "status": v.status or "needed",
                                   "expected_duration_s": v.expected_duration_s}) + "\n" for v in wanted)
    return "".join(f"{v.path}\n" for v in wanted)
