"""The ingest stage: probe every video of a folder into ``videos.parquet``, reusing what was probed.

Error rows are probed again on a rerun (a dangling link or a download still running may be fixed by
then); a video gone from the folder keeps its row as an error, so its events say why they have no video.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamo_data.core.errors import UserError
from streamo_data.core.schema import VideoRecord, VideoStatus
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.stages.summary import StageSummary
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, local_videos, make_dirs
from streamo_data.store.tables import rows_if_present, to_row, write_rows
from streamo_data.store.workdir import INGEST_MANIFEST, VIDEOS
from streamo_data.video.backends import available_backends
from streamo_data.video.probe import find_videos, probe_video


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
        row["path"]: row for row in rows_if_present(work_dir / VIDEOS) if row["status"] == VideoStatus.OK}

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
