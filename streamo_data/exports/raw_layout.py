"""``streamo export raw``: a release written back in the released Streamo-Instruct layout.

The released corpus (huggingface.co/datasets/maifoundations/Streamo-Instruct-465K) is one folder per task type,
each holding JSON lists of raw-annotation records; the reference converter (``convert_streaming_video.py``, our
``streamo convert raw-to-stream``) reads those files, and the ``streamo_release`` recipe reads them back.

Layout and names (one documented mapping, both directions):

* task folders: narration -> ``narration/``, dense_captioning -> ``event_caption/``, action_captioning ->
  ``action_caption/``, temporal_grounding -> ``event_grounding/``, time_sensitive_qa and offline_qa -> ``qa/``;
  one file per task and split, ``FOLDER/TASK_SPLIT.json`` (both QA tasks stay apart in ``qa/``);
* ``task_type``: ``QA`` for both QA tasks, as the reference repository's own example records write it
  (``dataset/example/raw_data.json``); for the other folders the public material we could read does not show
  the value, so we write the folder's name;
* ``source``: our recipe names become the names the release uses (``RELEASE_SOURCES``: activitynet_captions ->
  ActivityNet, qvhighlights -> QVHighlight, youcook2 -> Youcook, ...); other sources (annotators, ``--source``
  names) are written as they are. ``--our-names`` keeps our task and source names instead, so that the
  exported files convert to exactly what ``export stream-format`` writes.

Records are ``StreamingSample.to_raw()``, written one at a time (memory stays flat in the release size) into a
staging folder that replaces ``--out`` only when everything is written. ``--out`` must be empty, absent, or an
earlier export (it holds ``streamo_export.json``); anything else is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streamo_data.core.errors import UserError
from streamo_data.core.schema import StreamingSample
from streamo_data.store.io import write_text_atomic
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath, resolved
from streamo_data.store.tables import from_row, iter_rows

TASK_FOLDERS: dict[str, str] = {
    "narration": "narration",
    "dense_captioning": "event_caption",
    "action_captioning": "action_caption",
    "temporal_grounding": "event_grounding",
    "time_sensitive_qa": "qa",
    "offline_qa": "qa",
}
RELEASE_SOURCES: dict[str, str] = {
    "activitynet_captions": "ActivityNet",
    "qvhighlights": "QVHighlight",
    "youcook2": "Youcook",
    "coin": "coin",
    "didemo": "didemo",
    "tacos": "tacos",
    "queryd": "queryd",
    "hacs": "hacs",
    "llava_video": "LLaVA_Video",
}
MARKER = "streamo_export.json"


@dataclass
class ExportSummary:
    records: int = 0
    files: Counter[str] = field(default_factory=Counter)


class _JsonList:
    """A JSON list written record by record: ``[``, records separated by commas, ``]`` on close."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[str] = path.open("w", encoding="utf-8")
        self.handle.write("[")
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self.handle.write(("\n  " if not self.count else ",\n  ") + json.dumps(record, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.handle.write("\n]\n" if self.count else "]\n")
        self.handle.close()


def check_target(out_dir: Path) -> None:
    """Refuse an ``--out`` that holds anything but an earlier export."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; --out takes a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise UserError(f"{out_dir} is not empty and is not an earlier `streamo export raw`; choose an empty or new"
                        " --out")


RELEASE_TASK_TYPES: dict[str, str] = {"qa": "QA"}  # as in the reference's dataset/example/raw_data.json


def raw_record(sample: StreamingSample, release_names: bool) -> tuple[str, dict[str, Any]]:
    """(task folder, raw record) of one sample, named as the release names it unless ``release_names`` is off."""
    folder = TASK_FOLDERS.get(sample.task)
    if folder is None:
        raise UserError(f"sample {sample.sample_id}: task {sample.task!r} has no folder in the released layout"
                        f" (known: {', '.join(TASK_FOLDERS)})")
    record = sample.to_raw()
    if release_names:
        record["task_type"] = RELEASE_TASK_TYPES.get(folder, folder)
        record["source"] = RELEASE_SOURCES.get(sample.source, sample.source)
    return folder, record


def export_raw(release_dir: AnyPath, out_dir: Path, release_names: bool = True) -> ExportSummary:
    check_target(out_dir)
    summary = ExportSummary()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    lists: dict[str, _JsonList] = {}
    try:
        for sample, split in _samples_with_split(release_dir):
            folder, record = raw_record(sample, release_names)
            name = f"{folder}/{sample.task}_{split}.json"
            if name not in lists:
                lists[name] = _JsonList(staging / name)
            lists[name].add(record)
            summary.records += 1
            summary.files[name] += 1
        for json_list in lists.values():
            json_list.close()
        lists.clear()
        write_text_atomic(staging / MARKER, json.dumps({"release": str(resolved(release_dir)), "records":
                                                        summary.records, "files": dict(summary.files),
                                                        "release_names": release_names}, indent=2))
        _swap_in(staging, out_dir)
    finally:
        for json_list in lists.values():
            json_list.handle.close()
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _samples_with_split(release_dir: AnyPath) -> Iterator[tuple[StreamingSample, str]]:
    for shard in read_manifest(release_dir).shards:
        for row in iter_rows(release_dir / shard.path):
            yield from_row(StreamingSample, row), shard.split


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put the finished export at ``out_dir``; an earlier export there is removed only after the swap."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if out_dir.exists():
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
