"""The videos a benchmark uses, read from its annotation file as published, for decontamination and audits.

A corpus must not train on the videos its models are scored on, and a benchmark names its videos only in
its own annotation file, in its own layout. This module reads those files as their authors publish them
(no conversion step for a user to get wrong) into the set of (task, video) pairs each benchmark uses,
with every video's upstream ids (:func:`streamo_data.core.video_identity.identity_keys`), so that
:mod:`streamo_data.pipelines.mixture.decontaminate` and ``streamo audit --benchmark`` match them to corpus
videos by id, whatever folder either side keeps them in.

A file is recognised by its content, never its name; each entry votes for the layout whose fields it
has, and the layout most entries have is the file's:

* **OVO-Bench** (github.com/JoeLeelyf/OVO-Bench, ``data/ovo_bench_new.json``): a JSON list of objects,
  each ``{"id", "task", "video", ...}``. ``task`` is one of EPM, ASI, HLD, STU, OJR, ATR, ACR, OCR, FPD
  (multiple choice: ``realtime``, ``question``, ``options``, ``answer``, ``gt``), CRR (``ask_time``,
  ``clue_time``, ``test_info``), SSR (``tutorial``, ``all_steps``, ``start_time``, ``end_time``,
  ``test_info``) and REC (``activity``, ``start_times``, ``end_times``, ``test_info``). ``video`` is
  ``<dataset folder>/<file>``, sometimes one folder deeper: ``COIN/<youtube id>.mp4``,
  ``youcook2/<youtube id>.mp4``, ``cross_task/<youtube id>.mp4``, ``star/<charades id>.mp4``,
  ``hirest/<youtube id>_<start>_<end>.mp4``, ``perception_test/video_<n>.mp4``, ``MovieNet/tt<n>.mp4``,
  ``thumos/thumos15_video_validation_<n>.mp4``, ``OpenEQA/<n>-hm3d-<scene>.mp4``,
  ``Ego4D/clips/<uuid>.mp4``, ``YouTube_Games/<youtube id>&list=<playlist>&index=<n>.mp4`` (its YouTube
  id is a key too), ``AutoEvalMetaData/<n>.mp4``. The dataset is the first folder.
* **StreamingBench** (github.com/THUNLP-MT/StreamingBench, ``src/data/questions_{real,omni,sqa,
  proactive}[_stream].json``): a JSON list of objects ``{"video_path": "./videos/sample_<n>_<set>.mp4",
  "questions": [{"task_type", "question", "time_stamp", ...}], "time", "video_categories", ...}`` (one
  per time window of a video), or, in ``questions_sqa.json``, a list of lists of them (one list a
  video). The task is each question's ``task_type``. StreamingBench renames its videos
  ``sample_<n>_<set>`` and names no source dataset, so its keys meet only a corpus that kept those names.
* **ET-Bench** (github.com/PolyU-ChenLab/ETBench, ``docs/BENCHMARK.md``; the files
  ``annotations/etbench_{txt,vid}_v1.0.json`` are on Hugging Face, PolyU-ChenLab/ETBench): a JSON list of
  ``{"version", "idx", "task", "source", "video": "<source>/<file>.mp4", "duration", "q", ...}``
  (``task`` tvg, epm, tal, evs, vhd, dvc, slc, tem, gvq, rar, eca, rvq). The dataset is ``source``.
* **A plain list**: a text file of one video id or path a line (blank lines and ``#`` comment lines
  ignored), or a JSON list of strings. Its benchmark is the file's stem; tasks and datasets are "".

An entry that names no usable video (or an OVO-Bench/ET-Bench entry with no task, a StreamingBench one
with no question ``task_type``) is skipped and counted by reason; a file in none of these layouts, or
one whose entries are mostly in none, or in which no entry names a video, is refused with one line
naming it (a benchmark read as empty would decontaminate nothing, silently).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.core.video_identity import identity_keys, video_stem
from streamo_data.store.io import loads_json
from streamo_data.store.storage import AnyPath, redacted, storage_failure

OVO_BENCH = "ovo-bench"
STREAMINGBENCH = "streamingbench"
ET_BENCH = "et-bench"
LIST = "list"
FORMATS = "OVO-Bench, StreamingBench or ET-Bench annotations, or a list of video ids/paths"

# the fields that mark an entry of each JSON layout (an entry votes for the layout it shares most with)
_SIGNATURES: dict[str, frozenset[str]] = {
    OVO_BENCH: frozenset({"id", "task", "video"}),
    ET_BENCH: frozenset({"version", "idx", "task", "source", "video"}),
    STREAMINGBENCH: frozenset({"video_path", "questions"}),
}
_NOT_ONE_NAME = ("\t", ",", ";")  # a text line holding one of these is a row of fields, not a video name


@dataclass(frozen=True)
class BenchmarkVideo:
    """One video a benchmark task uses, as the file names it."""

    benchmark: str  # "ovo-bench", "streamingbench", "et-bench", or a plain list's file stem
    task: str  # the benchmark's task ("" for a plain list)
    name: str  # the video as the file gives it
    dataset: str  # the upstream dataset the entry names ("COIN", "youcook2"), "" when it names none
    keys: frozenset[str]  # its identity keys


@dataclass
class BenchmarkFile:
    """A benchmark file's videos, one per (task, video) pair in file order, and its malformed entries."""

    path: str
    benchmark: str
    format: str  # OVO_BENCH, STREAMINGBENCH, ET_BENCH or LIST
    videos: list[BenchmarkVideo] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> entries skipped for it

    def key_index(self) -> dict[str, list[BenchmarkVideo]]:
        """Identity key -> the benchmark's videos that carry it."""
        index: dict[str, list[BenchmarkVideo]] = defaultdict(list)
        for video in self.videos:
            for key in sorted(video.keys):
                index[key].append(video)
        return dict(index)

    def names(self) -> frozenset[str]:
        """The distinct videos, whatever tasks use them."""
        return frozenset(video.name for video in self.videos)


def benchmark_keys(name: str) -> frozenset[str]:
    """:func:`identity_keys`, and for a file named after a YouTube playlist URL's tail
    (``<youtube id>&list=<playlist>&index=<n>``, OVO-Bench's YouTube_Games) the keys of its id too."""
    keys = identity_keys(name)
    head, _, query = video_stem(name.strip()).partition("&")
    if head and "=" in query:
        keys |= identity_keys(head)
    return keys


def _folders(name: str) -> list[str]:
    """The folders of a path, outermost first (``./`` and empty parts dropped)."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return parts[:-1]


class _Reader:
    """Collects one file's videos (each (task, name) once) and skip reasons."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.videos: dict[tuple[str, str], BenchmarkVideo] = {}
        self.skipped: Counter[str] = Counter()

    def add(self, task: str, name: Any, dataset: str | None = None) -> bool:
        """Add the video ``name`` (with its first folder as dataset unless given); False when it is not
        a video name."""
        if not isinstance(name, str):
            return False
        keys = benchmark_keys(name)
        if not keys:
            return False
        if dataset is None:
            folders = _folders(name)
            dataset = folders[0] if folders else ""
        self.videos.setdefault((task, name), BenchmarkVideo(self.benchmark, task, name, dataset, keys))
        return True


def _task_of(entry: dict[str, Any], field_name: str) -> str:
    task = entry.get(field_name)
    return task.strip() if isinstance(task, str) else ""


def _ovo_bench(entries: list[Any], reader: _Reader) -> None:
    for entry in entries:
        if not isinstance(entry, dict):
            reader.skipped["entry that is not an object"] += 1
        elif not _task_of(entry, "task"):
            reader.skipped["entry without a task"] += 1
        elif not reader.add(_task_of(entry, "task"), entry.get("video")):
            reader.skipped["entry without a video path"] += 1


def _et_bench(entries: list[Any], reader: _Reader) -> None:
    for entry in entries:
        if not isinstance(entry, dict):
            reader.skipped["entry that is not an object"] += 1
        elif not _task_of(entry, "task"):
            reader.skipped["entry without a task"] += 1
        elif not reader.add(_task_of(entry, "task"), entry.get("video"), _task_of(entry, "source") or None):
            reader.skipped["entry without a video path"] += 1


def _streaming_entries(entries: list[Any]) -> Iterator[Any]:
    """The entries, those of questions_sqa.json's per-video lists included."""
    for entry in entries:
        if isinstance(entry, list):
            yield from entry
        else:
            yield entry


def _streaming_bench(entries: list[Any], reader: _Reader) -> None:
    for entry in _streaming_entries(entries):
        if not isinstance(entry, dict):
            reader.skipped["entry that is not an object"] += 1
            continue
        name, questions = entry.get("video_path"), entry.get("questions")
        if not isinstance(name, str) or not benchmark_keys(name):
            reader.skipped["entry without a video_path"] += 1
            continue
        if not isinstance(questions, list):
            reader.skipped["entry without a questions list"] += 1
            continue
        tasks = [_task_of(q, "task_type") for q in questions if isinstance(q, dict)]
        if not any(tasks):
            reader.skipped["entry without a question with a task_type"] += 1
            continue
        for task in tasks:
            if task:
                reader.add(task, name, "")  # StreamingBench names no source dataset


def _plain_list(names: list[Any], reader: _Reader) -> None:
    for name in names:
        if not reader.add("", name, ""):
            reader.skipped["entry that is not a video id or path"] += 1


_READERS: dict[str, Callable[[list[Any], _Reader], None]] = {
    OVO_BENCH: _ovo_bench, ET_BENCH: _et_bench, STREAMINGBENCH: _streaming_bench, LIST: _plain_list}


def _entry_vote(entry: Any) -> str | None:
    """The layout one top-level entry is in, or None when it is in none (or could be either of two)."""
    if isinstance(entry, str):
        return LIST
    if isinstance(entry, list):  # questions_sqa.json: a video's entries
        votes = {_entry_vote(item) for item in entry}
        return STREAMINGBENCH if votes == {STREAMINGBENCH} else None
    if not isinstance(entry, dict):
        return None
    shared = {layout: len(signature & entry.keys()) for layout, signature in _SIGNATURES.items()}
    best = max(shared.values())
    if best < 2:
        return None
    winners = [layout for layout, count in shared.items() if count == best]
    if winners == [OVO_BENCH, ET_BENCH]:  # task and video only: ET-Bench always has its source
        return OVO_BENCH
    return winners[0] if len(winners) == 1 else None


_JSON_TYPES = {dict: "an object", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _json_format(data: Any, shown: str) -> str:
    if not isinstance(data, list):
        raise UserError(f"{shown}: JSON holding {_JSON_TYPES.get(type(data), 'null')}, not a list of entries;"
                        f" expected {FORMATS}")
    if not data:
        raise UserError(f"{shown}: an empty list, no video in it; expected {FORMATS}")
    votes = Counter(_entry_vote(entry) for entry in data)
    unknown = votes.pop(None, 0)
    if not votes or unknown > sum(votes.values()):
        raise UserError(f"{shown}: {unknown} of {len(data)} entries are in no layout this reads;"
                        f" expected {FORMATS}")
    layout = votes.most_common(1)[0][0]
    assert layout is not None  # None was popped
    return layout


def _text_lines(text: str, shown: str, reader: _Reader) -> None:
    names = [line.strip() for line in text.splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names:
        raise UserError(f"{shown}: no video in it; expected {FORMATS}")
    rows = [name for name in names if any(mark in name for mark in _NOT_ONE_NAME)]
    if len(rows) * 2 > len(names):
        raise UserError(f"{shown}: {len(rows)} of {len(names)} lines hold several fields, not one video"
                        f" id or path; expected {FORMATS}")
    for name in names:
        if name in rows or not reader.add("", name, ""):
            reader.skipped["line that is not one video id or path"] += 1


def _read_text(path: AnyPath, shown: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise MissingInput(f"{shown}: no such benchmark file") from error
    except IsADirectoryError as error:
        raise UserError(f"{shown}: a folder, not a benchmark file") from error
    except OSError as error:
        raise UserError(f"{shown}: cannot read ({error.strerror or error})") from error
    except Exception as error:
        reason = storage_failure(error)
        if reason is None:
            raise
        raise UserError(f"{shown}: {reason}") from error
    if b"\0" in raw:
        raise UserError(f"{shown}: a binary file, not text; expected {FORMATS}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{shown}: not UTF-8 text (byte {error.start}); expected {FORMATS}") from error


def read_benchmark(path: AnyPath) -> BenchmarkFile:
    """The videos of a benchmark file in any of :data:`FORMATS`; a UserError naming it otherwise."""
    shown = redacted(str(path))
    text = _read_text(path, shown)
    if not text.lstrip().startswith(("[", "{")):
        reader = _Reader(path.stem)
        _text_lines(text, shown, reader)
        kind = LIST
    else:
        try:
            data = loads_json(text, shown)
        except json.JSONDecodeError as error:
            raise UserError(f"{shown}: not valid JSON ({error}); expected {FORMATS}") from error
        kind = _json_format(data, shown)
        reader = _Reader(path.stem if kind == LIST else kind)
        _READERS[kind](data, reader)
    if not reader.videos:
        reasons = ", ".join(f"{count} {reason}" for reason, count in reader.skipped.most_common())
        raise UserError(f"{shown}: read as {kind}, but no entry names a video ({reasons})")
    return BenchmarkFile(shown, reader.benchmark, kind, list(reader.videos.values()), reader.skipped)
