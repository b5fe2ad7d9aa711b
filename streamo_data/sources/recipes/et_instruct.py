"""E.T. Instruct 164K: ``et_instruct_164k_txt.json`` (or ``_vid.json``), a list of
``{"task", "source", "video", "duration", "src", "tgt", "conversations": [{"from", "value"}, ...]}``.

Timestamps are read from ``tgt`` (seconds, the answer's timestamps, present in both variants) and
paired into spans where a task answers with spans. Per task:

* tvg, epm, tem (grounding a query): the query, quoted in the human turn, over each ``tgt`` span;
* tal (action localisation), evs (summarisation): the answer's label over each span;
* dvc, slc (dense / step captioning): the answer's text between timestamps, one event per span;
* tvc (captioning a given span): the answer over the ``src`` span;
* gvq (grounded QA): question and answer as a qa event over the ``tgt`` span;
* vhd (highlight detection, single timestamps) and anything else: skipped with a named reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    TRAINING_ONLY,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    number,
    optional_number,
    read_json,
)
from streamo_data.store.storage import AnyPath

TIMESTAMP = r"(?:<vid>|\d+(?:\.\d+)?)"
SPAN = re.compile(rf"{TIMESTAMP}\s*-\s*{TIMESTAMP}\s*(?:seconds|secs|s)?\s*[,:.]?\s*")
QUOTED = re.compile(r"['\"“]([^'\"”]{3,})['\"”]")
GROUNDING, LABELLED, CAPTIONING = {"tvg", "epm", "tem"}, {"tal", "evs"}, {"dvc", "slc"}


def _turns(record: dict[str, Any]) -> tuple[str, str]:
    """The first human and gpt turns' text; ValueError when the conversation is not a list of such turns."""
    conversations = record["conversations"]
    if not isinstance(conversations, list) or not all(isinstance(t, dict) for t in conversations):
        raise ValueError("conversations is not a list of turns")
    human = next((t["value"] for t in conversations if t.get("from") == "human"), "")
    answer = next((t["value"] for t in conversations if t.get("from") == "gpt"), "")
    if not isinstance(human, str) or not isinstance(answer, str):
        raise ValueError("a turn's value is not text")
    return human.replace("<image>", "").strip(), answer.strip()


def _spans(values: list[Any]) -> list[tuple[float, float]]:
    numbers = [number(v) for v in values]
    if len(numbers) % 2:
        raise ValueError("an odd number of timestamps")
    return [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]


def _clean(text: str) -> str:
    return SPAN.sub(" ", text).strip(" ,.;:\n").strip()


def _question(human: str) -> str:
    """The question itself, without the instruction about timestamps that E.T. appends to it."""
    match = re.search(r"[^.?!\n]*\?", human)
    return match.group(0).strip() if match else _clean(human)


def _answer(text: str) -> str:
    """The answer's sentences that carry no timestamp (the evidence sentence is the span itself)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    kept = [s for s in sentences if not SPAN.search(s) and "<vid>" not in s]
    return " ".join(kept).strip() or _clean(text)


class ETInstruct:
    name: ClassVar[str] = "et_instruct"
    kind: ClassVar[EventKind] = EventKind.CAPTION
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = TRAINING_ONLY  # an instruction-tuning set: training data only

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, list):
            raise UserError(f"{path}: E.T. Instruct is a JSON list of records")
        records = ((f"{path.name}[{index}]", record) for index, record in enumerate(data))
        yield from each_record(records, lambda where, record: self._record(where, record, report), report)

    def _record(self, where: str, record: Any, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(record, dict) or any(k not in record for k in ("task", "video", "conversations")):
            report.skip(where, "missing field: task/video/conversations")
            return
        if not isinstance(record["task"], str):
            report.skip(where, "malformed task: not a string")
            return
        try:
            events = list(self._events(record, where, report))
        except (TypeError, ValueError, KeyError) as error:
            report.skip(where, f"malformed {record['task']} record: {error}")
            return
        yield from events

    def _events(self, record: dict[str, Any], where: str, report: RecipeReport) -> Iterator[RawEvent]:
        task, video = record["task"], str(record["video"])
        duration = optional_number(record, "duration")
        human, answer = _turns(record)
        if task in GROUNDING:
            quoted = QUOTED.search(human)
            query = quoted.group(1) if quoted else human
            for k, (start, end) in enumerate(_spans(record.get("tgt", []))):
                yield RawEvent(video, start, end, query, EventKind.HIGHLIGHT, duration, where=f"{where}[{k}]")
        elif task in LABELLED:
            label = _clean(answer) or task
            for k, (start, end) in enumerate(_spans(record.get("tgt", []))):
                yield RawEvent(video, start, end, label, EventKind.ACTION, duration, where=f"{where}[{k}]")
        elif task in CAPTIONING:
            spans = _spans(record.get("tgt", []))
            texts = [t.strip(" ,.;:\n") for t in SPAN.split(answer)[1:]]
            if len(texts) != len(spans):
                raise ValueError(f"{len(spans)} spans but {len(texts)} captions")
            kind = EventKind.STEP if task == "slc" else EventKind.CAPTION
            for k, ((start, end), text) in enumerate(zip(spans, texts, strict=True)):
                if text:
                    yield RawEvent(video, start, end, text, kind, duration, where=f"{where}[{k}]")
        elif task == "tvc":
            (start, end), = _spans(record.get("src", []))
            yield RawEvent(video, start, end, _clean(answer), EventKind.CAPTION, duration, where=where)
        elif task == "gvq":
            (start, end), = _spans(record.get("tgt", []))[:1]
            yield RawEvent(video, start, end, _question(human), EventKind.QA, duration, answer=_answer(answer),
                           where=where)
        else:
            report.skip(where, f"unsupported E.T. task: {task}")
