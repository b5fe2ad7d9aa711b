"""``streamo benchmark ovo-bench run``: every question of an annotation file asked of one model under one
protocol, the answers written as OVO-Bench's own result file (``backward``, ``realtime``, ``forward``).

A run keeps its work beside the result file, in ``<results>.work/``: the settings it was started with, a
journal (JSONL, one line per answered job, flushed and synced as each answer arrives), the endpoint's reply
cache, and each video's frames (decoded once, for all its questions and every later run). A rerun of the
same command resumes: journaled jobs are not asked again, and an endpoint request that was answered before
a kill is read from the cache, so nothing is sent twice. A failed job (an unreadable video, a request that
kept failing) is named and counted, its answer is ``None`` as OVO-Bench's inference writes a failure, and
it is asked again on the next rerun. The result file is written whole, atomically, at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.benchmarks.ovo.annotations import Annotations
from streamo_data.benchmarks.ovo.frames import frames_until, uniform, video_frames
from streamo_data.benchmarks.ovo.models import BenchModel
from streamo_data.benchmarks.ovo.protocols import OFFLINE, Job, jobs_for, result_entry
from streamo_data.core.errors import UserError
from streamo_data.runtime.runner import progress_bar
from streamo_data.sources.annotators.client import RequestFailed
from streamo_data.store.io import write_text_atomic
from streamo_data.video.backends import DecodeError


@dataclass
class RunSettings:
    annotations: str  # SHA-256 of the annotation file: a resumed run must ask the same questions
    protocol: str
    model: str
    endpoint: str | None
    fps: float = 1.0
    max_frames: int = 64
    max_side: int = 448


@dataclass
class RunReport:
    jobs: int = 0
    answered: int = 0  # this run
    resumed: int = 0  # from the journal
    failed: Counter[str] = field(default_factory=Counter)
    first_failed: dict[str, str] = field(default_factory=dict)
    frames_sent: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    frames_decoded: int = 0
    usage: dict[str, Any] = field(default_factory=dict)


def work_dir(results: Path) -> Path:
    return results.with_name(results.name + ".work")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_journal(path: Path) -> dict[str, Any]:
    """Answered jobs by key; a line cut short by a kill is ignored (its job is asked again)."""
    answers: dict[str, Any] = {}
    if not path.exists():
        return answers
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "key" in record:
            answers[record["key"]] = record["answer"]
    return answers


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("a", encoding="utf-8")

    def add(self, key: str, answer: Any) -> None:
        self.handle.write(json.dumps({"key": key, "answer": answer}, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def check_settings(work: Path, results: Path, settings: RunSettings, replace: bool) -> None:
    """A run resumes only itself: other settings in the same place are refused (or, with ``replace``,
    started over), and a result file that no run of ours is behind is never overwritten."""
    recorded = work / "settings.json"
    mine = json.dumps(settings.__dict__, sort_keys=True)
    if replace:
        for name in ("journal.jsonl", "settings.json"):
            (work / name).unlink(missing_ok=True)
    elif recorded.exists():
        if json.loads(recorded.read_text()) != json.loads(mine):
            raise UserError(f"{results} belongs to a run with other settings ({recorded}); pass --replace to start"
                            " over, or choose another --out")
    elif results.exists():
        raise UserError(f"{results} exists and no run of ours is behind it; pass --replace or choose another --out")
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(recorded, mine)


async def run_benchmark(annotations: Annotations, video_root: Path, model: BenchModel, settings: RunSettings,
                        results: Path, replace: bool = False, concurrency: int = 1) -> RunReport:
    work = work_dir(results)
    check_settings(work, results, settings, replace)
    answers = read_journal(work / "journal.jsonl")
    jobs = jobs_for(settings.protocol, annotations.lists)
    report = RunReport(jobs=len(jobs), resumed=sum(1 for job in jobs if job.key in answers))
    journal = Journal(work / "journal.jsonl")
    frame_lists: dict[str, list[Path] | DecodeError] = {}
    video_locks: dict[str, asyncio.Lock] = {}
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def frames_of(video: str) -> list[Path]:
        async with video_locks.setdefault(video, asyncio.Lock()):  # one decode per video
            if video not in frame_lists:
                begin = time.perf_counter()
                try:
                    frame_lists[video] = await asyncio.to_thread(video_frames, video_root, video, work / "frames",
                                                                 settings.fps, settings.max_side)
                    report.frames_decoded += len(frame_lists[video])  # type: ignore[arg-type]
                except DecodeError as error:
                    frame_lists[video] = error
                report.decode_seconds += time.perf_counter() - begin
        found = frame_lists[video]
        if isinstance(found, DecodeError):
            raise found
        return found

    async def one(job: Job, progress: Any, task: Any) -> None:
        async with gate:
            try:
                frames = await frames_of(job.entry["video"])
                if settings.protocol == OFFLINE:
                    clip = frames[:frames_until(job.until_s, settings.fps)]
                    shown = [clip[i] for i in uniform(len(clip), settings.max_frames)]
                    answer: Any = await model.offline(shown, job.prompt)
                    report.frames_sent += len(shown)
                else:
                    answer = [list(reply) for reply in await model.stream(frames, job)]
                    report.frames_sent += len(answer)
            except Exception as error:  # noqa: BLE001 - one question's failure (a video, a reply, the model) is
                # counted and asked again on a rerun; it never ends the run nor loses the journaled answers
                reason = f"{type(error).__name__}: {error}"
                short = reason if isinstance(error, RequestFailed) else type(error).__name__
                report.failed[short] += 1
                report.first_failed.setdefault(short, f"{job.entry['task']} id {job.entry['id']}: {reason}")
            else:
                answers[job.key] = answer
                journal.add(job.key, answer)
                report.answered += 1
            finally:
                progress.advance(task)

    try:
        with progress_bar() as progress:
            task = progress.add_task(f"OVO-Bench ({settings.protocol})", total=len(jobs))
            progress.advance(task, report.resumed)
            await asyncio.gather(*(one(job, progress, task) for job in jobs if job.key not in answers))
    finally:
        journal.close()
        await model.close()
    lists = {category: [result_entry(settings.protocol, entry, answers) for entry in entries]
             for category, entries in annotations.lists.items()}
    write_text_atomic(results, json.dumps(lists, indent=4, ensure_ascii=False))
    report.seconds = time.perf_counter() - started
    report.usage = model.usage.as_dict()
    write_text_atomic(work / "report.json", json.dumps(report.__dict__, indent=2, default=dict))
    return report
