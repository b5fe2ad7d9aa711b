"""The released Streamo-Instruct corpus (huggingface.co/datasets/maifoundations/Streamo-Instruct-465K) and what
``streamo export raw`` writes: one folder per task type, ``qa/``, ``event_grounding/``, ``event_caption/``,
``action_caption/``, ``narration/``, each of JSON files holding a list of raw-annotation records (the reference
format of github.com/maifoundations/Streamo): ``{"video_name", "video_path", "task_type", "source",
"question": [{"content", "time"}], "response": [{"content", "st_time", "end_time", "time"}]}``.

Give the release folder (or one of its JSON files). Every response becomes one event over its evidence span
(``st_time``-``end_time``), or at its instant ``time`` when it has no span; times are read as the reference
reads them (numbers, numeric strings, ``MM:SS``). What the event says depends on the task folder:

* ``narration/`` -> narration, ``event_caption/`` -> caption, ``action_caption/`` -> action: the response text;
* ``event_grounding/`` -> highlight: the question as asked (the query), with the response as its answer;
* ``qa/`` -> qa: the question asked last at or before the response (the first one if none), and the answer.

The record's ``source`` and ``task_type`` are kept in each event's provenance (``params``). Durations are not
in the records: give ``--videos`` (the videos, an ingest, or a catalogue keyed by ``video_path``). Files are
read record by record, so a 100K-record file does not have to fit in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind, Provenance
from streamo_data.formats.raw_records import RawInputError, open_raw_records
from streamo_data.formats.render import parse_raw_time
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    TRAINING_ONLY,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
)
from streamo_data.store.storage import AnyPath

FOLDER_KINDS: dict[str, EventKind] = {
    "narration": EventKind.NARRATION,
    "event_caption": EventKind.CAPTION,
    "action_caption": EventKind.ACTION,
    "event_grounding": EventKind.HIGHLIGHT,
    "qa": EventKind.QA,
}
PROVENANCE_MODEL = "streamo-raw-release"


def release_files(path: AnyPath) -> list[tuple[str, AnyPath]]:
    """(task folder, file) for a release folder or a single file in one of its task folders."""
    if path.is_file():
        return [(path.parent.name, path)]
    found: list[tuple[str, AnyPath]] = []
    for folder in sorted(FOLDER_KINDS):
        # the files of one folder differ only in their names: key=str orders them as the paths do, a UPath too
        files: list[AnyPath] = sorted((path / folder).glob("*.json"), key=str)
        found += [(folder, file) for file in files]
    if not found:
        raise UserError(f"{path}: no JSON file in any task folder ({', '.join(sorted(FOLDER_KINDS))})")
    return found


def _time(turn: dict[str, Any], key: str) -> float | None:
    return parse_raw_time(turn.get(key))


def _span(response: dict[str, Any]) -> tuple[float, float]:
    """The evidence span, or the instant ``time`` as an empty span; ValueError when neither is usable."""
    start, end = _time(response, "st_time"), _time(response, "end_time")
    if start is not None and end is not None:
        return start, end
    if start is not None or end is not None:
        raise ValueError("a span needs both st_time and end_time")
    instant = _time(response, "time")
    if instant is None:
        raise ValueError("no time")
    return instant, instant


def _asked_before(questions: list[tuple[float, str]], at: float) -> str:
    """The question asked last at or before ``at`` seconds (the first question when none was)."""
    asked = [text for time, text in questions if time <= at]
    return asked[-1] if asked else questions[0][1]


class StreamoRelease:
    name: ClassVar[str] = "streamo_release"
    kind: ClassVar[EventKind] = EventKind.CAPTION  # per task folder, see FOLDER_KINDS
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = TRAINING_ONLY  # an instruction-tuning set: training data only

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        for folder, file in release_files(path):
            if folder not in FOLDER_KINDS:
                report.skip(str(file), f"not in a task folder ({', '.join(sorted(FOLDER_KINDS))})")
                continue
            kind = FOLDER_KINDS[folder]
            try:
                records = ((f"{folder}/{file.name}[{index}]", record)
                           for index, record in enumerate(open_raw_records(file).records))

                def events(where: str, record: Any, kind: EventKind = kind) -> Iterator[RawEvent]:
                    return self._events(record, kind, where, report)

                yield from each_record(records, events, report)
            except RawInputError as error:
                report.skip(str(error), "unreadable file")

    def _events(self, record: Any, kind: EventKind, where: str, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(record, dict):
            report.skip(where, "malformed record: not a JSON object")
            return
        video = str(record.get("video_path") or record.get("video_name") or "")
        if not video:
            report.skip(where, "missing field: video_path")
            return
        questions_raw, responses = record.get("question") or [], record.get("response")
        if not isinstance(responses, list) or not responses or not isinstance(questions_raw, list):
            report.skip(where, "missing field: response")
            return
        try:
            questions = [(_time(q, "time") or 0.0, str(q.get("content") or "").strip()) for q in questions_raw]
        except (AttributeError, ValueError):
            report.skip(where, "malformed question")
            return
        questions = [(time, text) for time, text in questions if text]
        if kind in (EventKind.QA, EventKind.HIGHLIGHT) and not questions:
            report.skip(where, "no question")
            return
        provenance = Provenance(model=PROVENANCE_MODEL, params={
            "source": str(record.get("source") or ""), "task_type": str(record.get("task_type") or "")})
        for k, response in enumerate(responses):
            here = f"{where}[{k}]"
            if not isinstance(response, dict):
                report.skip(here, "malformed response: not an object")
                continue
            try:
                start, end = _span(response)
            except ValueError:
                report.skip(here, "response without a usable time")
                continue
            content = str(response.get("content") or "").strip()
            if not content:
                report.skip(here, "empty response")
                continue
            if kind in (EventKind.QA, EventKind.HIGHLIGHT):
                text, answer = _asked_before(questions, end), content
            else:
                text, answer = content, None
            yield RawEvent(video, start, end, text, kind, answer=answer, where=here, provenance=provenance)
