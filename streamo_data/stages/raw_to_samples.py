"""The raw-to-samples stage: reference raw annotation (a JSON list of records) -> validated
StreamingSample rows in a work directory, ready for ``streamo release``, under our alignment rule.

Records that would lose an answer are rejected with their reason (the reference would drop the answer
silently). The reference's own conversion, bug for bug, is :mod:`streamo_data.reference.convert`; a
release goes back to the stream format through :mod:`streamo_data.exports.stream_format`.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.formats.raw_records import open_raw_records
from streamo_data.formats.render import (
    turns_from_raw,
)
from streamo_data.reference.convert import outside_root
from streamo_data.reference.rules import reference_video_path
from streamo_data.store.io import write_text_atomic
from streamo_data.store.tables import to_row, write_rows
from streamo_data.store.workdir import REJECTS, SAMPLES
from streamo_data.video.probe import SampledFrames, count_sampled_frames, video_id_for

__all__ = ["ConvertSummary", "raw_to_samples"]


@dataclass
class ConvertSummary:
    records: int = 0
    written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


def _video_path(record: dict[str, Any]) -> str:
    """The record's video as the reference finds it (``video_path``, else the first of ``videos``)."""
    return str(reference_video_path(record) or "")


@functools.lru_cache(maxsize=65536)
def _frames_of(full_path: str, fps: float) -> SampledFrames | str:
    """Cached: a video is annotated by many records, and its frame count does not change in a run."""
    return count_sampled_frames(full_path, fps)


def _locate(record: dict[str, Any], video_root: str | None, fps: float) -> tuple[str, str, SampledFrames]:
    """(path as written in the record, full path, frame count); raises ValueError with the reason."""
    relative = _video_path(record)
    full = os.path.join(video_root, relative) if video_root and relative else relative
    if video_root and relative and outside_root(video_root, relative):
        raise ValueError(f"video_path {relative!r} is outside --video-root {video_root}")
    if not relative or not os.path.exists(full):
        raise ValueError(f"video not found: {full or '(no video_path)'}")
    frames = _frames_of(full, fps)
    if isinstance(frames, str):
        raise ValueError(frames)
    return relative, full, frames


def _name(record: Any, index: int) -> str:
    label = (record.get("video_name") or _video_path(record)) if isinstance(record, dict) else None
    return f"record {index} ({label or 'no video'})"


@dataclass(frozen=True)
class ParsedRecord:
    """A raw record with its video located and counted and its turns read."""

    index: int
    record: dict[str, Any]
    relative_path: str
    full_path: str
    frames: SampledFrames
    questions: list[QuestionTurn]
    responses: list[ResponseTurn]


def parse_records(
    raw_path: Path, video_root: str | None, fps: float
) -> Iterator[tuple[int, Any, ParsedRecord | list[str]]]:
    """Every raw record with either its parse or the reasons it cannot be parsed; only a file that cannot
    be read at all raises (RawInputError)."""
    for index, record in enumerate(open_raw_records(raw_path).records):
        if not isinstance(record, dict):
            yield index, record, [f"the record is {type(record).__name__}, not an object"]
            continue
        try:
            relative, full, frames = _locate(record, video_root, fps)
            questions, responses = turns_from_raw(record)
        except ValidationError as error:
            yield index, record, validation_messages(error)
            continue
        except ValueError as error:
            yield index, record, [str(error)]
            continue
        yield index, record, ParsedRecord(index, record, relative, full, frames, questions, responses)


def raw_to_samples(raw_path: Path, video_root: str | None, out_dir: Path, fps: float = 1.0) -> ConvertSummary:
    summary = ConvertSummary()
    samples: dict[str, dict[str, Any]] = {}
    rejects: list[dict[str, Any]] = []
    for index, record, parsed in parse_records(raw_path, video_root, fps):
        summary.records += 1
        if isinstance(parsed, ParsedRecord):
            try:
                sample = StreamingSample.create(
                    task=str(record.get("task_type") or "unknown"), source=str(record.get("source") or "unknown"),
                    video_id=video_id_for(parsed.relative_path), video_path=parsed.relative_path,
                    video_name=str(record.get("video_name") or "") or None, duration_s=parsed.frames.duration_s,
                    fps=fps, num_frames=parsed.frames.num_frames, questions=parsed.questions,
                    responses=parsed.responses,
                )
            except ValidationError as error:
                parsed = validation_messages(error)
            else:
                samples.setdefault(sample.sample_id, to_row(sample))
                continue
        summary.rejected.update(parsed)
        rejects.append({"record": index, "item": _name(record, index), "reasons": parsed})
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.written = write_rows(out_dir / SAMPLES, StreamingSample, samples.values())
    write_text_atomic(out_dir / REJECTS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects))
    return summary
