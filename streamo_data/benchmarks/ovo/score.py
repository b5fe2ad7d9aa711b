"""OVO-Bench's score of result files, computed as its own ``score.py`` (``OVOBenchOfflineScore``) computes it.

Rules, theirs exactly:

* the result files' ``backward``, ``realtime`` and ``forward`` lists are concatenated, and an entry counts
  in the category of the list it is in;
* a multiple-choice entry scores 1 when its ``ground_truth`` letter is a substring of its ``response``
  (so "B" scores in "Answer: B", and a ``None`` response scores 0);
* a forward entry scores once per ``test_info`` item: REC when the digits of the response, joined, equal
  the ``count`` (so "1 or 2" reads as 12); SSR and CRR when the response is exactly "N" for ``type`` 0 or
  "Y" for ``type`` 1, or else contains "No" (type 0) or "Yes" (type 1);
* a task's accuracy is the mean of its scores; a category's is the mean of its tasks' accuracies; the
  overall is the mean of the three categories' (not of the tasks, nor of the items).

Where their script would stop with a traceback (an entry without ``response``, a forward task that is not
REC/SSR/CRR, a category with no entry at all), this one names and counts the entry, leaves it out, and
says which categories the overall lacks.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamo_data.benchmarks.ovo.tasks import CATEGORIES, FORWARD
from streamo_data.core.errors import UserError

LISTS = tuple(CATEGORIES)


@dataclass
class Score:
    tasks: dict[str, float]  # percent
    categories: dict[str, float]  # percent, over the categories with entries
    overall: float | None  # percent; None when no category has entries
    counts: dict[str, int]  # scored items per task
    missing_categories: list[str] = field(default_factory=list)
    malformed: Counter[str] = field(default_factory=Counter)  # reason -> entries left out
    examples: dict[str, str] = field(default_factory=dict)  # reason -> the first entry with it

    def as_json(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "categories": self.categories, "overall": self.overall}


def choice_score(response: Any, truth: str) -> int:
    return 0 if response is None else int(truth in response)


def rec_score(response: Any, count: Any) -> int:
    if response is None:
        return 0
    return int("".join(re.findall(r"\d+", response)) == str(count))


def yes_no_score(response: Any, kind: Any) -> int:
    if response is None:
        return 0
    if (response == "N" and kind == 0) or (response == "Y" and kind == 1):
        return 1
    return int(("No" if kind == 0 else "Yes") in response)


def _entry_scores(category: str, entry: Any) -> list[int]:
    """The entry's scores, or ValueError saying why it cannot be scored."""
    if not isinstance(entry, dict) or not isinstance(entry.get("task"), str):
        raise ValueError("not an object with a task")
    task = entry["task"]
    if category != "forward":
        if "response" not in entry or "ground_truth" not in entry:
            raise ValueError("a multiple-choice entry without response or ground_truth")
        if entry["response"] is not None and not isinstance(entry["response"], str):
            raise ValueError("a response that is not text")
        return [choice_score(entry["response"], str(entry["ground_truth"]))]
    if task not in FORWARD:
        raise ValueError(f"forward task {task!r} is not REC, SSR or CRR")
    tests = entry.get("test_info")
    if not isinstance(tests, list) or not tests:
        raise ValueError("a forward entry without test_info")
    scores = []
    for test in tests:
        if not isinstance(test, dict) or "response" not in test:
            raise ValueError("a test_info item without response")
        response = test["response"]
        if response is not None and not isinstance(response, str):
            raise ValueError("a response that is not text")
        if task == "REC":
            if "count" not in test:
                raise ValueError("a REC test_info item without count")
            scores.append(rec_score(response, test["count"]))
        else:
            if test.get("type") not in (0, 1):
                raise ValueError(f"a {task} test_info item whose type is not 0 or 1")
            scores.append(yes_no_score(response, test["type"]))
    return scores


def merge_results(paths: list[Path]) -> dict[str, list[Any]]:
    """The lists of every result file (a folder stands for its ``*.json`` files, as their script reads a
    model's folder); a file that is not a result file is refused with its name."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    if not files:
        raise UserError(f"no result files in {', '.join(map(str, paths))}")
    merged: dict[str, list[Any]] = {name: [] for name in LISTS}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise UserError(f"{path}: not a readable JSON result file ({error})") from None
        if not isinstance(data, dict) or not any(isinstance(data.get(name), list) for name in LISTS):
            raise UserError(f"{path}: not an OVO-Bench result file (no backward/realtime/forward lists)")
        for name in LISTS:
            merged[name].extend(data.get(name) or [])
    return merged


def score_results(results: dict[str, list[Any]]) -> Score:
    by_task: dict[str, list[int]] = defaultdict(list)
    tasks_of: dict[str, list[str]] = {name: [] for name in LISTS}
    malformed: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for category in LISTS:
        for entry in results.get(category, []):
            try:
                scores = _entry_scores(category, entry)
            except ValueError as error:
                reason = f"{category}: {error}"
                malformed[reason] += 1
                examples.setdefault(reason, f"id {entry.get('id')!r}" if isinstance(entry, dict) else repr(entry)[:60])
                continue
            task = entry["task"]
            if task not in tasks_of[category]:
                tasks_of[category].append(task)
            by_task[f"{category}/{task}"].extend(scores)
    tasks: dict[str, float] = {}
    counts: dict[str, int] = {}
    categories: dict[str, float] = {}
    for category in LISTS:
        accuracies = []
        for task in tasks_of[category]:
            scores = by_task[f"{category}/{task}"]
            accuracy = 100 * sum(scores) / len(scores)
            tasks[task] = accuracy
            counts[task] = len(scores)
            accuracies.append(accuracy)
        if accuracies:
            categories[category] = sum(accuracies) / len(accuracies)
    overall = sum(categories.values()) / len(categories) if categories else None
    return Score(tasks, categories, overall, counts, [c for c in LISTS if c not in categories], malformed, examples)
