"""The offline annotate stage: the deterministic annotator over every probed video, with no network.

A video that annotated to no event is still marked done (``annotated.json``), so a rerun does not decode it
again; ``--force`` starts over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamo_data.core.schema import Event, VideoRecord, VideoStatus
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.sources.annotators.offline import annotate_video
from streamo_data.stages.summary import StageSummary
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import from_row, rows_if_present, to_row, write_rows
from streamo_data.store.workdir import EVENTS, VIDEOS, video_root
from streamo_data.video.backends import DecodeError, available_backends


def annotate_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    record = from_row(VideoRecord, item["video"])
    try:
        events = annotate_video(record, Path(item["video_dir"]), available_backends(item["backend"]))
    except DecodeError as error:
        return [{"_failed": record.video_id, "reason": f"{record.path}: {error}"}]
    return [to_row(e) for e in events] or [{"_done": record.video_id}]


def run_annotate_offline(work_dir: AnyPath, executor: Executor, backend: str = "decord",
                         force: bool = False) -> StageSummary:
    videos = [row for row in rows_if_present(work_dir / VIDEOS) if row["status"] == VideoStatus.OK]
    events_path, done_path = work_dir / EVENTS, work_dir / "annotated.json"
    kept = [] if force else rows_if_present(events_path)
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
