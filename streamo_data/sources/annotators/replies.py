"""The output schemas of the LLM annotators, as pydantic models, checked against the segment asked about.

A reply is parsed as structured output against its model; times outside the segment (or the video)
and empty answers are validation errors, whose message is shown to the model once before the reply
is rejected.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from streamo_data.core.schema import TIME_TOLERANCE_S
from streamo_data.core.text_keys import normalized

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


# ---- the stages of the multi-stage pipelines (see streamo_data/sources/annotators/staged.py) ----------------------

MAX_NARRATION_WORDS = 10  # the rewrite aims at about five words a line; twice that is a reply to retry
MAX_QUERY_WORDS = 30


def _inside_video(time_s: float, info: ValidationInfo, what: str) -> None:
    start, end = _bounds(info)
    if not start - TIME_TOLERANCE_S <= time_s <= end + TIME_TOLERANCE_S:
        raise ValueError(f"{what} {time_s:g}s is outside the video ({start:g}s to {end:g}s)")


class WindowChangeReply(_Reply):
    """What changes within one short window (``no change`` is an answer too)."""

    change: str = Text


class WindowChange(_Reply):
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    change: str = Text


class WindowChangesReply(_Reply):
    """What changes within each of several consecutive windows asked about in one request: one answer per
    window, in order, each naming its window's span (so an answer is never given to the wrong window)."""

    windows: list[WindowChange] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_per_window(self, info: ValidationInfo) -> Self:
        asked = [tuple(span) for span in (info.context or {}).get("windows", [])]
        if asked and len(self.windows) != len(asked):
            raise ValueError(f"{len(asked)} windows were asked about, {len(self.windows)} answered: one answer"
                             " per window, in order")
        for item, (start, end) in zip(self.windows, asked, strict=False):
            if abs(item.start_s - start) > TIME_TOLERANCE_S or abs(item.end_s - end) > TIME_TOLERANCE_S:
                raise ValueError(f"answer {item.start_s:g}s-{item.end_s:g}s is not the window asked about in"
                                 f" that place ({start:g}s-{end:g}s)")
        return self


class RewriteItem(_Reply):
    time_s: float = Field(ge=0)
    text: str = Text


class NarrationRewriteReply(_Reply):
    """The window descriptions rewritten into a narration, or the whole video judged a negative sample.
    The rewrite's promises are checked: lines in strictly increasing time, short, no line repeating
    the one before it (removing repeats is the rewrite's job)."""

    negative: bool
    reason: str
    items: list[RewriteItem]

    @model_validator(mode="after")
    def _rewritten(self, info: ValidationInfo) -> Self:
        if self.negative:
            if not self.reason.strip():
                raise ValueError("a negative sample needs its reason")
            return self
        if not self.items:
            raise ValueError("no narration lines (set negative to true, with a reason, to reject the video)")
        for before, item in zip([None, *self.items], self.items, strict=False):
            _inside_video(item.time_s, info, "time_s")
            if len(item.text.split()) > MAX_NARRATION_WORDS:
                raise ValueError(f"line at {item.time_s:g}s has more than {MAX_NARRATION_WORDS} words")
            if before is not None and item.time_s <= before.time_s:
                raise ValueError(f"times must increase: {item.time_s:g}s follows {before.time_s:g}s")
            if before is not None and _same(before.text, item.text):
                raise ValueError(f"line at {item.time_s:g}s repeats the line before it")
        return self


class SegmentCaptionReply(_Reply):
    caption: str = Text


class ActionCaptionReply(SegmentCaptionReply):
    """The action pipeline's own stage kind: same shape, its own schema name and cache keys."""


class GroundReply(_Reply):
    """The span of the video a caption describes, asked back to verify the caption."""

    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _span(self, info: ValidationInfo) -> Self:
        _inside_video(self.start_s, info, "start_s")
        _inside_video(self.end_s, info, "end_s")
        if self.start_s >= self.end_s:
            raise ValueError(f"start_s {self.start_s:g} is not before end_s {self.end_s:g}")
        return self


class ActionGroundReply(GroundReply):
    """The action pipeline's own grounding stage kind."""


class QueryReply(_Reply):
    """A caption rewritten as a search query: it must be a rewrite (not the caption again), and short."""

    query: str = Text

    @model_validator(mode="after")
    def _rewritten(self, info: ValidationInfo) -> Self:
        caption = str((info.context or {}).get("caption", ""))
        if caption and _same(caption, self.query):
            raise ValueError("the query repeats the caption word for word; rewrite it as a search query")
        if len(self.query.split()) > MAX_QUERY_WORDS:
            raise ValueError(f"the query has more than {MAX_QUERY_WORDS} words")
        return self


class TimedAnswer(_Reply):
    time_s: float = Field(ge=0)
    answer: str = Text


class ChangeQAReply(_Reply):
    """One question whose answer changes: at least two timed answers, inside the video, in increasing
    time, each different from the one before (an unchanged answer is no change)."""

    question: str = Text
    answers: list[TimedAnswer]

    @model_validator(mode="after")
    def _changes(self, info: ValidationInfo) -> Self:
        if len(self.answers) < 2:
            raise ValueError(f"needs at least 2 timed answers, got {len(self.answers)}")
        for before, item in zip([None, *self.answers], self.answers, strict=False):
            _inside_video(item.time_s, info, "time_s")
            if before is not None and item.time_s <= before.time_s:
                raise ValueError(f"answer times must increase: {item.time_s:g}s follows {before.time_s:g}s")
            if before is not None and _same(before.answer, item.answer):
                raise ValueError(f"the answer at {item.time_s:g}s is the same as the one before it")
        return self


def _same(a: str, b: str) -> bool:
    return normalized(a) == normalized(b)


REPLIES: dict[str, type[_Reply]] = {
    "caption_reply": CaptionReply, "narration_reply": NarrationReply, "qa_reply": QAReply,
    "narration_window_reply": WindowChangeReply, "narration_windows_reply": WindowChangesReply,
    "narration_rewrite_reply": NarrationRewriteReply,
    "caption_segment_reply": SegmentCaptionReply, "caption_ground_reply": GroundReply,
    "action_segment_reply": ActionCaptionReply, "action_ground_reply": ActionGroundReply,
    "grounding_query_reply": QueryReply, "ts_qa_changes_reply": ChangeQAReply,
}


def response_format(name: str) -> dict[str, object]:
    """The ``response_format`` for structured output against the named reply model."""
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": REPLIES[name].model_json_schema(), "strict": True}}
