"""The output schemas of the LLM annotators, as pydantic models, checked against the segment asked about.

A reply is parsed as structured output against its model; times outside the segment (or the video)
and empty answers are validation errors, whose message is shown to the model once before the reply
is rejected.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from streamo_data.schema import TIME_TOLERANCE_S

Text = Field(min_length=1, pattern=r"\S")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _bounds(info: ValidationInfo) -> tuple[float, float]:
    context = info.context or {}
    return float(context.get("start", 0.0)), float(context.get("end", float("inf")))


class CaptionReply(_Reply):
    caption: str = Text


class NarrationItem(_Reply):
    time_s: float = Field(ge=0)
    text: str = Text


class NarrationReply(_Reply):
    items: list[NarrationItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _inside(self, info: ValidationInfo) -> Self:
        start, end = _bounds(info)
        for item in self.items:
            if not start - TIME_TOLERANCE_S <= item.time_s <= end + TIME_TOLERANCE_S:
                raise ValueError(f"time_s {item.time_s} is outside the video ({start:g}s to {end:g}s)")
        return self


class QAItem(_Reply):
    question: str = Text
    answer: str = Text
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    type: Literal["time_sensitive", "offline"]


class QAReply(_Reply):
    items: list[QAItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _inside(self, info: ValidationInfo) -> Self:
        start, end = _bounds(info)
        for item in self.items:
            if item.start_s > item.end_s:
                raise ValueError(f"start_s {item.start_s} is after end_s {item.end_s} for {item.question!r}")
            if item.start_s < start - TIME_TOLERANCE_S or item.end_s > end + TIME_TOLERANCE_S:
                raise ValueError(f"span {item.start_s:g}s-{item.end_s:g}s of {item.question!r} is outside the video"
                                 f" ({start:g}s to {end:g}s)")
        return self


REPLIES: dict[str, type[_Reply]] = {
    "caption_reply": CaptionReply, "narration_reply": NarrationReply, "qa_reply": QAReply,
}


def response_format(name: str) -> dict[str, object]:
    """The ``response_format`` for structured output against the named reply model."""
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": REPLIES[name].model_json_schema(), "strict": True}}
