"""The build stage: every task builder over every usable video and its events, into ``samples.parquet``.

Identical samples (same content, same id) collapse to one; what a builder chose not to make is counted
with its reason, and a build that makes nothing at all leaves the previous samples in place.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from streamo_data.core.errors import UserError
from streamo_data.core.reasons import reason_key
from streamo_data.core.schema import Event, StreamingSample, VideoRecord, VideoStatus
from streamo_data.corpus.tasks import BUILDERS, build_all, check_task_names
from streamo_data.runtime.runner import Executor, run_stage
from streamo_data.stages.summary import StageSummary
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import from_row, rows_if_present, to_row, write_rows
from streamo_data.store.workdir import EVENTS, REJECTS, SAMPLES, VIDEOS


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
    videos = [row for row in rows_if_present(work_dir / VIDEOS) if row["status"] == VideoStatus.OK]
    events_by_video: dict[str, list[dict[str, Any]]] = {}
    for row in rows_if_present(work_dir / EVENTS):
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
