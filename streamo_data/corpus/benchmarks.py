"""The videos a benchmark uses, read from its annotation file as published, for decontamination and audits.

A file is recognised by its content, not its name:

* OVO-Bench (github.com/JoeLeelyf/OVO-Bench, ``data/ovo_bench_new.json``): a JSON list of
  ``{"id", "task", "video": "<dataset>/<...>.mp4", ...}`` (``task`` EPM, HLD, ASI, ..., the folder the
  source dataset: ``COIN/<youtube id>.mp4``, ``youcook2/...``, ``star/<charades id>.mp4``, ``Ego4D/...``).
* StreamingBench (github.com/THUNLP-MT/StreamingBench, ``src/data/questions_*.json``): a JSON list of
  ``{"video_path", "questions": [{"task_type", ...}], ...}``, or of lists of them (``questions_sqa.json``).
* ET-Bench (github.com/PolyU-ChenLab/ETBench, ``etbench_txt_v1.0.json``): a JSON list of
  ``{"task", "source", "video": "<source>/<...>.mp4", ...}``.
* A plain list: one video id or path a line (blank lines and ``#`` comments ignored), or a JSON list of
  strings.

Each video becomes its upstream ids (:func:`streamo_data.core.video_identity.identity_keys`). An entry
of the wrong shape is skipped and counted with its reason; a file in none of these formats is refused.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streamo_data.core.errors import UserError
from streamo_data.core.video_identity import identity_keys
from streamo_data.store.io import loads_json
from streamo_data.store.storage import AnyPath

FORMATS = "OVO-Bench, StreamingBench, ET-Bench, or a list of video ids/paths"


@dataclass(frozen=True)
class BenchmarkVideo:
    """One video a benchmark task uses, as the file names it."""

    task: str
    name: str
    dataset: str  # the source dataset its path names (``COIN``), "" when the path has no folder
    keys: frozenset[str]


@dataclass
class BenchmarkFile:
    path: AnyPath
    benchmark: str
    format: str
    videos: list[BenchmarkVideo] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def key_index(self) -> dict[str, list[BenchmarkVideo]]:
        """Identity key -> the benchmark's videos that carry it."""
        index: dict[str, list[BenchmarkVideo]] = defaultdict(list)
        for video in self.videos:
            for key in video.keys:
                index[key].append(video)
        return dict(index)


def _dataset(name: str) -> str:
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return parts[-2] if len(parts) >= 2 else ""


def _video(task: Any, name: Any) -> BenchmarkVideo | None:
    if not isinstance(name, str) or not identity_keys(name):
        return None
    return BenchmarkVideo(str(task or ""), name, _dataset(name), identity_keys(name))


def _ovo_bench(entries: list[Any], report: Counter[str]) -> Iterator[BenchmarkVideo]:
    for entry in entries:
        video = _video(entry.get("task"), entry.get("video")) if isinstance(entry, dict) else None
        if video is None:
            report["entry without a task and video path"] += 1
        else:
            yield video


def _streaming_bench(entries: list[Any], report: Counter[str]) -> Iterator[BenchmarkVideo]:
    flat = [e for group in entries for e in (group if isinstance(group, list) else [group])]
    for entry in flat:
        questions = entry.get("questions") if isinstance(entry, dict) else None
        if not isinstance(questions, list):
            report["entry without video_path and questions"] += 1
            continue
        tasks = sorted({str(q.get("task_type")) for q in questions if isinstance(q, dict) and q.get("task_type")})
        for task in tasks or [""]:
            video = _video(task, entry.get("video_path"))
            if video is None:
                report["entry without a video_path"] += 1
                break
            yield video


def _format_of(data: Any) -> str | None:
    if not isinstance(data, list) or not data:
        return None
    first = next((e for e in data if isinstance(e, dict | list | str)), None)
    if isinstance(first, list):
        first = next((e for e in first if isinstance(e, dict)), None)
    if isinstance(first, str):
        return "list"
    if not isinstance(first, dict):
        return None
    if "video_path" in first and "questions" in first:
        return "streamingbench"
    if "task" in first and "video" in first:
        return "et-bench" if "source" in first else "ovo-bench"
    return None


def read_benchmark(path: AnyPath) -> BenchmarkFile:
    """The videos of a benchmark file; UserError naming the file when it is in none of :data:`FORMATS`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); expected {FORMATS}") from error
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from error
    try:
        data: Any = loads_json(text, str(path)) if text.lstrip().startswith(("[", "{")) else None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error}); expected {FORMATS}") from error
    skipped: Counter[str] = Counter()
    if data is None:  # a text list
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not names:
            raise UserError(f"{path}: no video in it; expected {FORMATS}")
        videos = [v for v in (_video("", name) for name in names) if v is not None]
        return BenchmarkFile(path, path.stem, "list", videos, skipped)
    kind = _format_of(data)
    if kind is None:
        raise UserError(f"{path}: not a benchmark file this reads; expected {FORMATS}")
    if kind == "list":
        videos = []
        for name in data:
            video = _video("", name)
            if video is None:
                skipped["entry that is not a video id or path"] += 1
            else:
                videos.append(video)
        return BenchmarkFile(path, path.stem, kind, videos, skipped)
    reader = _streaming_bench if kind == "streamingbench" else _ovo_bench
    return BenchmarkFile(path, kind, kind, list(reader(data, skipped)), skipped)
