"""The stages over a work directory: ingest -> annotate -> build. Each reads and writes files only.

A work directory holds ``ingest.json`` (where the videos are, at which fps), ``videos.parquet``,
``events.parquet``, ``samples.parquet`` and ``rejects.jsonl``. Every stage can run again from its
inputs; ingest and annotate skip what is already done (keyed by path and by video id).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.annotators.offline import annotate_video
from streamo_data.errors import MissingInput, UserError
from streamo_data.io import write_text_atomic
from streamo_data.pipelines.runner import Executor, run_stage
from streamo_data.reasons import reason_key
from streamo_data.schema import Event, StreamingSample, VideoRecord, VideoStatus
from streamo_data.storage import AnyPath, local_videos, make_dirs
from streamo_data.tables import from_row, iter_rows, to_row, write_rows
from streamo_data.tasks import BUILDERS, build_all, check_task_names
from streamo_data.video.backends import DecodeError, available_backends
from streamo_data.video.probe import find_videos, probe_video

# the work dir's file names, which every stage (and its callers, from here) uses
from streamo_data.workdir import EVENTS, INGEST_MANIFEST, REJECTS, SAMPLES, VIDEOS  # noqa: F401


@dataclass
class StageSummary:
    """What a stage did, for the CLI's table and for tests."""

    done: int = 0
    reused: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    produced: Counter[str] = field(default_factory=Counter)
    # what a builder chose not to make, with its reason (e.g. evidence never shown): no error of the run
    not_built: Counter[str] = field(default_factory=Counter)


def _read(path: AnyPath) -> list[dict[str, Any]]:
    return list(iter_rows(path)) if path.exists() else []


# ---- ingest -------------------------------------------------------------------------------------------

def ingest_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    backends = available_backends(item["backend"])
    record = probe_video(Path(item["video_dir"]), item["path"], item["fps"], backends)
    return [to_row(record)]


def run_ingest(video_dir: Path, work_dir: AnyPath, fps: float, executor: Executor, backend: str = "decord",
               force: bool = False) -> StageSummary:
    video_dir = local_videos(video_dir, "videos").resolve()
    make_dirs(work_dir)
    manifest = work_dir / INGEST_MANIFEST
    previous = json.loads(manifest.read_text()) if manifest.exists() else {}
    same_setup = previous.get("video_dir") == str(video_dir) and previous.get("fps") == fps
    # Error rows are probed again: their cause (a dangling link, a download still running) may be gone.
    existing = {} if force or not same_setup else {
        row["path"]: row for row in _read(work_dir / VIDEOS) if row["status"] == VideoStatus.OK}

    paths = find_videos(video_dir)
    if not paths:
        raise UserError(f"{video_dir}: no video files found (nothing written; {VIDEOS} is left as it was)")
    todo = [{"video_dir": str(video_dir), "path": p, "fps": fps, "backend": backend}
            for p in paths if p not in existing]
    rows = {p: existing[p] for p in paths if p in existing}
    for row in run_stage(ingest_item, todo, executor, "ingest"):
        rows[row["path"]] = row
    for path, row in existing.items():  # gone from the folder: kept as an error row, so its events say why
        if path not in rows:
            rows[path] = {**row, "status": VideoStatus.ERROR.value, "error": f"no longer in {video_dir}"}
    write_rows(work_dir / VIDEOS, VideoRecord, (rows[p] for p in sorted(rows)))
    write_text_atomic(manifest, json.dumps({"video_dir": str(video_dir), "fps": fps}, indent=2))

    summary = StageSummary(done=len(todo), reused=len(paths) - len(todo))
    for row in rows.values():
        if row["status"] == VideoStatus.ERROR:
            summary.failed[row["error"]] += 1
        else:
            summary.produced["ok"] += 1
    return summary


def video_root(work_dir: AnyPath) -> Path:
    manifest = work_dir / INGEST_MANIFEST
    if not manifest.exists():
        raise MissingInput(f"{work_dir} has no {INGEST_MANIFEST}: run `streamo ingest` into it first")
    return Path(json.loads(manifest.read_text())["video_dir"])


# ---- annotate (offline) ---------------------------------------------------------------------------------

def annotate_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    record = from_row(VideoRecord, item["video"])
    try:
        events = annotate_video(record, Path(item["video_dir"]), available_backends(item["backend"]))
    except DecodeError as error:
        return [{"_failed": record.video_id, "reason": f"{record.path}: {error}"}]
    return [to_row(e) for e in events] or [{"_done": record.video_id}]


def run_annotate_offline(work_dir: AnyPath, executor: Executor, backend: str = "decord",
                         force: bool = False) -> StageSummary:
    videos = [row for row in _read(work_dir / VIDEOS) if row["status"] == VideoStatus.OK]
    events_path, done_path = work_dir / EVENTS, work_dir / "annotated.json"
    kept = [] if force else _read(events_path)
    done_ids = set() if force or not done_path.exists() else set(json.loads(done_path.read_text()))
    kept = [row for row in kept if row["video_id"] in done_ids]
    todo = [{"video": v, "video_dir": str(video_root(work_dir)), "backend": backend}
            for v in videos if v["video_id"] not in done_ids]

    summary = StageSummary(done=len(todo), reused=len(videos) - len(todo))
    rows = list(kept)
    for row in run_stage(annotate_item, todo, executor, "annotate (offline)"):
        if "_failed" in row:
            summary.failed[row["reason"]] += 1
        elif "_done" in row:
            done_ids.add(row["_done"])
        else:
            rows.append(row)
            done_ids.add(row["video_id"])
    rows.sort(key=lambda r: (r["video_id"], r["start_s"], r["end_s"], r["event_id"]))
    write_rows(events_path, Event, rows)
    write_text_atomic(done_path, json.dumps(sorted(done_ids)))
    summary.produced.update(r["source"] for r in rows)
    return summary


# ---- build -------------------------------------------------------------------------------------------

def build_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    video = from_row(VideoRecord, item["video"])
    events = [from_row(Event, row) for row in item["events"]]
    out: list[dict[str, Any]] = []
    for task in item["tasks"]:
        samples, rejects = build_all(BUILDERS[task](), video, events, item["seed"])
        out.extend({"sample": to_row(s)} for s in samples)
        out.extend({"reject": {"video_id": r.video_id, "task": r.task, "reason": r.reason}} for r in rejects)
    return out


def run_build(work_dir: AnyPath, tasks: list[str], seed: int, executor: Executor) -> StageSummary:
    check_task_names(tasks)
    videos = [row for row in _read(work_dir / VIDEOS) if row["status"] == VideoStatus.OK]
    events_by_video: dict[str, list[dict[str, Any]]] = {}
    for row in _read(work_dir / EVENTS):
        events_by_video.setdefault(row["video_id"], []).append(row)
    items = [{"video": v, "events": events_by_video.get(v["video_id"], []), "tasks": tasks, "seed": seed}
             for v in videos]

    samples: dict[str, dict[str, Any]] = {}
    rejects: list[dict[str, Any]] = []
    for row in run_stage(build_item, items, executor, "build"):
        if "sample" in row:
            samples.setdefault(row["sample"]["sample_id"], row["sample"])  # identical content collapses
        else:
            rejects.append(row["reject"])
    ordered = sorted(samples.values(), key=lambda s: (s["task"], s["video_id"], s["sample_id"]))
    if not ordered:
        reasons = Counter(f"{r['task']}: {reason_key(r['reason'])}" for r in rejects).most_common(3)
        why = "; ".join(f"{reason} ×{count}" for reason, count in reasons) or "no event that these tasks read"
        raise UserError(f"{work_dir}: no sample built for {', '.join(tasks)} from {len(videos)} usable videos"
                        f" ({why}); {SAMPLES} is left as it was")
    write_rows(work_dir / SAMPLES, StreamingSample, ordered)
    write_text_atomic(work_dir / REJECTS, "".join(json.dumps(r) + "\n" for r in rejects))
    summary = StageSummary(done=len(items))
    summary.produced.update(s["task"] for s in ordered)
    summary.not_built.update(f"{r['task']}: {reason_key(r['reason'])}" for r in rejects)
    return summary
