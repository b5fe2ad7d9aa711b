"""OVO-Bench's annotation file (``data/ovo_bench_new.json``) as its inference reads it: one JSON list, each
entry placed in the backward, realtime or forward list by its task, as ``inference.py`` does.

The fields an entry needs depend on its task (multiple choice: ``question``, ``options``, ``gt``,
``realtime``; REC: ``activity``, ``test_info`` with ``realtime`` and ``count``; SSR: ``test_info`` with
``realtime``, ``step`` and ``type``; CRR: ``question``, ``ask_time``, ``test_info`` with ``realtime`` and
``type``). An entry that lacks one is named and left out, never a traceback; a file that is not such a
list is refused with one line.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.benchmarks.ovo.tasks import CATEGORY_OF, MULTIPLE_CHOICE
from streamo_data.core.errors import UserError

NEEDS_TEST = {"REC": ("realtime", "count"), "SSR": ("realtime", "step", "type"), "CRR": ("realtime", "type")}


@dataclass
class Annotations:
    lists: dict[str, list[dict[str, Any]]]  # backward / realtime / forward, in file order
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> entries
    first_skipped: dict[str, str] = field(default_factory=dict)  # reason -> the first entry's id

    def entries(self) -> list[dict[str, Any]]:
        return [entry for entries in self.lists.values() for entry in entries]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def problem(entry: Any) -> str:
    """Why an entry cannot be run ('' when it can)."""
    if not isinstance(entry, dict):
        return "not an object"
    task = entry.get("task")
    if task not in CATEGORY_OF:
        return f"task {task!r} is not one of OVO-Bench's twelve"
    if not isinstance(entry.get("video"), str) or not entry["video"]:
        return "no video"
    if "id" not in entry:
        return "no id"
    if task in MULTIPLE_CHOICE:
        options = entry.get("options")
        if not isinstance(entry.get("question"), str) or not isinstance(options, list) or not options:
            return f"a {task} entry without question or options"
        if not isinstance(entry.get("gt"), int) or not 0 <= entry["gt"] < len(options):
            return f"a {task} entry whose gt is not an option's index"
        if not _number(entry.get("realtime")):
            return f"a {task} entry without realtime"
        return ""
    tests = entry.get("test_info")
    if not isinstance(tests, list) or not tests:
        return f"a {task} entry without test_info"
    for test in tests:
        if not isinstance(test, dict) or any(key not in test for key in NEEDS_TEST[task]):
            return f"a {task} test_info item without {', '.join(NEEDS_TEST[task])}"
        if not _number(test["realtime"]):
            return f"a {task} test_info item whose realtime is not a time"
    if task == "REC" and (not isinstance(entry.get("activity"), str) or not entry.get("start_times")):
        return "a REC entry without activity or start_times"
    if task == "CRR" and (not isinstance(entry.get("question"), str) or not _number(entry.get("ask_time"))):
        return "a CRR entry without question or ask_time"
    return ""


def load_annotations(path: Path, tasks: set[str] | None = None) -> Annotations:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: not a readable JSON annotation file ({error})") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: not OVO-Bench annotations (a JSON list of entries, as ovo_bench_new.json)")
    found = Annotations({"backward": [], "realtime": [], "forward": []})
    for entry in data:
        if (reason := problem(entry)):
            found.skipped[reason] += 1
            found.first_skipped.setdefault(reason, repr(entry.get("id")) if isinstance(entry, dict) else "?")
            continue
        if tasks is None or entry["task"] in tasks:
            found.lists[CATEGORY_OF[entry["task"]]].append(entry)
    if not found.entries():
        raise UserError(f"{path}: no OVO-Bench entry to run ({dict(found.skipped) or 'the task filter kept none'})")
    return found
