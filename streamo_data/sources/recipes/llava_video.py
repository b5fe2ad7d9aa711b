"""LLaVA-Video-178K question answering (huggingface.co/datasets/lmms-lab/LLaVA-Video-178K): per duration and
source folder, ``*_oe_*_qa_processed.json`` (open-ended) and ``*_mc_*_qa_processed.json`` (multiple choice),
each a JSON list of ``{"id", "video": RELATIVE_PATH, "conversations": [{"from": "human", "value": "<image>\\n
QUESTION"}, {"from": "gpt", "value": ANSWER}, ...], "data_source"}``. The QA is offline (no timestamps): each
human/gpt pair becomes a qa event spanning the whole video, so it is answered at the end. A multiple-choice
question keeps its options. Durations are not in the files: give ``--videos`` (the extracted video folder)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.sources.recipes.base import (
    CLIP_TOLERANCE_S,
    TRAINING_ONLY,
    WHOLE_VIDEO,
    RawEvent,
    RecipeReport,
    Splits,
    each_record,
    read_json,
)
from streamo_data.store.storage import AnyPath


def _pairs(conversations: Any) -> list[tuple[str, str]]:
    """(question, answer) per human/gpt pair; ValueError when the turns do not alternate so."""
    if not isinstance(conversations, list) or not conversations or len(conversations) % 2:
        raise ValueError("turns do not come in human/gpt pairs")
    pairs = []
    for human, gpt in zip(conversations[::2], conversations[1::2], strict=True):
        if not isinstance(human, dict) or not isinstance(gpt, dict) or human.get("from") != "human" or gpt.get(
                "from") != "gpt" or not isinstance(human.get("value"), str) or not isinstance(gpt.get("value"), str):
            raise ValueError("turns do not come in human/gpt pairs")
        pairs.append((human["value"].replace("<image>", "").strip(), gpt["value"].strip()))
    return pairs


class LLaVAVideoQA:
    name: ClassVar[str] = "llava_video"
    kind: ClassVar[EventKind] = EventKind.QA
    paraphrases: ClassVar[bool] = False
    end_tolerance_s: ClassVar[float] = CLIP_TOLERANCE_S
    splits: ClassVar[Splits] = TRAINING_ONLY  # an instruction-tuning set: training data only

    def parse(self, path: AnyPath, report: RecipeReport) -> Iterator[RawEvent]:
        data = read_json(path)
        if not isinstance(data, list):
            raise UserError(f"{path}: LLaVA-Video-178K QA is a JSON list of records")
        records = ((f"{path.name}[{index}]", record) for index, record in enumerate(data))
        yield from each_record(records, lambda where, record: self._events(where, record, report), report)

    def _events(self, where: str, record: Any, report: RecipeReport) -> Iterator[RawEvent]:
        if not isinstance(record, dict) or any(k not in record for k in ("video", "conversations")):
            report.skip(where, "missing field: video/conversations")
            return
        try:
            pairs = _pairs(record["conversations"])
        except ValueError:
            report.skip(where, "malformed conversation: turns do not come in human/gpt pairs")
            return
        for k, (question, answer) in enumerate(pairs):
            here = f"{where}[{k}]"
            if not question or not answer:
                report.skip(here, "empty question or answer")
                continue
            yield RawEvent(str(record["video"]), 0.0, WHOLE_VIDEO, question, self.kind, answer=answer, where=here)
