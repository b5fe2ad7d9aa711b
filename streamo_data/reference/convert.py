"""`raw-to-stream`: the reference converter's output, byte for byte, streamed and spread over the cores.

The reference (``scripts/convert_streaming_video.py to-stream`` in maifoundations/Streamo) loads the
whole raw file, opens every record's video with OpenCV (the same file once per record), keeps every
result in memory and ends with one ``json.dump(..., ensure_ascii=False, indent=2)``. We keep its
decisions (:mod:`streamo_data.formats.render`) and change only how the work is done:

* records are read one by one (:mod:`streamo_data.formats.raw_records`) and converted in chunks by a process
  pool; each worker writes its chunk's bytes to a part file beside the output, and the parts are
  appended in input order, in the kernel (``copy_file_range``), as they complete: memory is flat in
  the record count and the output never passes through the reading process;
* each worker counts a video's frames once and caches the answer per path;
* the indented JSON is written by :func:`streamo_data.formats.render.encode_reference_record`.

Where the reference drops a record it prints a warning and so do we (naming the record). Where it
raises (a record or turn that is not an object, a NaN time, text it cannot encode), its whole run
aborts and writes nothing; we drop that record alone, with a warning that says so. What it writes but
silently loses (a question never shown, an answer overwritten or past the end) is reported as a warning.
A ``video_path`` that escapes ``--video-root`` is kept, as the reference keeps it, with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import types
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import IO, Any

from streamo_data.formats.raw_records import open_raw_records
from streamo_data.reference.rules import (
    ReferenceAbort,
    encode_reference_record,
    reference_record,
    reference_video_path,
)
from streamo_data.store.io import atomic_path
from streamo_data.video.probe import count_sampled_frames

ABORTS = "the reference converter aborts its whole run on it"


@dataclass
class StreamSummary:
    records: int = 0
    written: int = 0
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StreamOptions:
    video_root: str | None
    fps: float
    system_prompt: str | None
    depth: int  # containers around each record: 1 inside the output list, 0 for a single-object file
    json_list: bool  # the reference's indented JSON; False writes JSON Lines


def record_name(record: Any, index: int) -> str:
    label = (record.get("video_name") or reference_video_path(record)) if isinstance(record, dict) else None
    return f"record {index} ({label if isinstance(label, str) and label else 'no video'})"


@functools.lru_cache(maxsize=1 << 16)
def outside_root(video_root: str, video_path: str) -> bool:
    """True when joining ``video_path`` to the root lands outside it (``../x.mp4``, ``/abs/x.mp4``)."""
    root = os.path.normpath(os.path.abspath(video_root))
    full = os.path.normpath(os.path.abspath(os.path.join(video_root, video_path)))
    return os.path.commonpath([root, full]) != root


@functools.lru_cache(maxsize=1 << 16)
def reference_frame_count(full_path: str, fps: float) -> int | str:
    """Sampled frames of a video as the reference counts them, or why the reference drops its records;
    cached, because a video is annotated by many records and its frame count does not change in a run."""
    counted = count_sampled_frames(full_path, fps)  # the reference drops the record on any error, so do we
    return counted if isinstance(counted, str) else counted.num_frames


def convert_record(index: int, record: Any, options: StreamOptions) -> tuple[bytes | None, list[str]]:
    """One record's bytes (None when the reference would not write it) and the warnings about it."""
    name = record_name(record, index)
    if not isinstance(record, dict):
        return None, [f"{name}: is {type(record).__name__}, not an object; {ABORTS}"]
    path = reference_video_path(record)
    if not path:
        return None, [f"{name}: video not found: no video_path"]
    if not isinstance(path, str):
        return None, [f"{name}: video_path {path!r} is not a string; {ABORTS}"]
    warnings = []
    full = path
    if options.video_root:
        full = os.path.join(options.video_root, path)
        if outside_root(options.video_root, path):
            warnings.append(f"{name}: video_path {path!r} is outside --video-root; kept, as the reference keeps it")
    frames = reference_frame_count(full, options.fps)
    if isinstance(frames, str):
        return None, [*warnings, f"{name}: {frames}"]
    try:
        converted = reference_record(record, full, frames, options.fps, options.system_prompt)
        if options.json_list:
            text = encode_reference_record(converted, options.depth)
        else:
            text = json.dumps(converted.as_dict(), ensure_ascii=False) + "\n"
        data = text.encode("utf-8")
    except ReferenceAbort as error:
        return None, [*warnings, f"{name}: {error}; {ABORTS}"]
    except UnicodeEncodeError as error:
        return None, [*warnings, f"{name}: text that UTF-8 cannot encode ({error.reason}); {ABORTS}"]
    return data, [*warnings, *(f"{name}: {loss}" for loss in converted.frames.losses)]


Chunk = list[tuple[int, Any]]
Outcome = tuple[bool, list[str]]  # (written?, warnings; the last one says why when not written)

# Between two records of the reference's indented list. A part file starts every record with it; the
# first record of the whole output gets the list's opening instead.
SEPARATOR = b",\n  "
OPENING = b"[\n  "


def convert_chunk(chunk: Chunk, options: StreamOptions, part: str) -> list[Outcome]:
    """Convert a chunk and write its records to ``part`` (each led by SEPARATOR in the list layout)."""
    outcomes: list[Outcome] = []
    lead = SEPARATOR if options.json_list and options.depth == 1 else b""
    with open(part, "wb") as out:
        for index, record in chunk:
            data, warnings = convert_record(index, record, options)
            if data is not None:
                out.write(lead + data)
            outcomes.append((data is not None, warnings))
    return outcomes


def _chunks(records: Iterable[Any], size: int) -> Iterator[Chunk]:
    numbered = enumerate(records)
    while chunk := list(itertools.islice(numbered, size)):
        yield chunk


def _parts_in_order(chunks: Iterator[Chunk], options: StreamOptions, workers: int,
                    staging: Path) -> Iterator[tuple[Path, list[Outcome]]]:
    """Chunks converted into part files, by a process pool with at most two chunks a worker in flight,
    yielded in input order; a file of one chunk (or ``workers`` 1) is converted here, starting no process."""
    numbered = enumerate(chunks)
    first, second = next(numbered, None), next(numbered, None)
    if second is None or workers <= 1:
        for k, chunk in itertools.chain([first] if first else [], [second] if second else [], numbered):
            part = staging / f"{k:08d}"
            yield part, convert_chunk(chunk, options, str(part))
        return
    assert first is not None  # a second chunk came, so a first did
    with _bare_main():  # all workers start here (a multiprocessing.Pool starts them in its constructor)
        pool = multiprocessing.get_context("spawn").Pool(workers)
    with pool:
        pending: deque[tuple[Path, AsyncResult[list[Outcome]]]] = deque()
        for k, chunk in itertools.chain([first, second], numbered):
            part = staging / f"{k:08d}"
            pending.append((part, pool.apply_async(convert_chunk, (chunk, options, str(part)))))
            if len(pending) >= 2 * workers:
                done, result = pending.popleft()
                yield done, result.get()
        while pending:
            done, result = pending.popleft()
            yield done, result.get()


def _append(out: IO[bytes], part: Path, skip: int = 0) -> None:
    """Append ``part`` (less its first ``skip`` bytes) to ``out`` inside the kernel where it can."""
    out.flush()
    with part.open("rb") as source:
        size = os.fstat(source.fileno()).st_size - skip
        offset = skip
        try:
            while size > 0:
                copied = os.copy_file_range(source.fileno(), out.fileno(), size, offset)
                if copied == 0:
                    break
                offset, size = offset + copied, size - copied
        except OSError:  # another file system, or no copy_file_range: copy through user space
            pass
        if size > 0:
            source.seek(offset)
            shutil.copyfileobj(source, out)
    part.unlink()


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Spawned workers (spawn: no fork of a process that may hold OpenCV's threads) re-run the parent's
    ``__main__``; for the ``streamo`` script that imports the whole CLI, 180 MiB and 1.2 s a worker,
    where converting needs this module only (60 MiB). So workers start while ``__main__`` is bare."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def raw_to_stream(raw_path: Path, video_root: str | None, out_file: Path, fps: float = 1.0,
                  system_prompt: str | None = None, workers: int | None = None,
                  chunk_size: int = 256) -> StreamSummary:
    """Write what the reference's ``to-stream`` writes for ``raw_path``: a ``.json`` target gets its
    layout (indented JSON list), anything else JSON Lines. Raises RawInputError for an unreadable file."""
    raw = open_raw_records(raw_path)
    options = StreamOptions(video_root=video_root, fps=fps, system_prompt=system_prompt,
                            depth=0 if raw.single else 1, json_list=out_file.suffix == ".json")
    workers = workers or len(os.sched_getaffinity(0))
    summary = StreamSummary()
    with atomic_path(out_file) as temporary, temporary.open("wb") as out:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_file.name}.", suffix=".parts", dir=temporary.parent))
        try:
            for part, outcomes in _parts_in_order(_chunks(raw.records, chunk_size), options, workers, staging):
                written_before = summary.written
                for written, warnings in outcomes:
                    summary.records += 1
                    if written:
                        summary.written += 1
                        summary.warnings.extend(warnings)
                    else:
                        summary.dropped.append(warnings[-1])
                        summary.warnings.extend(warnings[:-1])
                first = written_before == 0 and summary.written > 0 and options.json_list and options.depth == 1
                if first:
                    out.write(OPENING)
                _append(out, part, skip=len(SEPARATOR) if first else 0)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if options.json_list:
            out.write(b"[]" if summary.written == 0 else b"\n]" if options.depth == 1 else b"")
    return summary
