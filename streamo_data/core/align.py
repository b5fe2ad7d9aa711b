"""The state-alignment rule: where on the frame grid a question is shown and an answer may be said.

This is the one place that maps seconds to frames. It follows the reference converter of Streamo
(`scripts/convert_streaming_video.py` in maifoundations/Streamo) exactly at 1 fps with whole-second
times, so that what we render is byte-for-byte what its trainer expects, and generalises with one rule:

* At ``fps`` sampled frames per second, frame ``i`` covers the interval ``(i/fps, (i+1)/fps]`` seconds.
* A time ``T`` names the frame that ends at or contains ``T``: ``ceil(T * fps) - 1``, and 0 for ``T = 0``.
  At 1 fps with whole seconds that is ``T - 1``, the reference's rule. A fractional time lands on the
  frame in which it is observed, so an answer is never placed before its evidence could be seen (the
  reference truncates fractional times instead; it only ever sees whole seconds in its own data).
* A question at ``T`` is shown on ``frame_of(T)``.
* A response with an evidence span ``(s, e)`` makes frames ``frame_of(s) .. frame_of(e)`` standby and
  answers on the next frame, ``frame_of(e) + 1``: the assistant speaks once the span is complete.
* A response with a single time ``T`` answers on ``frame_of(T)``.
* Responses are applied in list order and a later one overwrites what an earlier one wrote, as in the
  reference. Where that would lose an answer (overwritten by a later span's standby, two answers on
  one frame, an answer past the last frame) the reference silently drops it; here it is an *issue*,
  reported with its reason, and a sample with issues does not validate.
* **The last-frame rule** (our paths, not the reference's): an answer due after the last frame is said on
  the last frame, so that an event whose evidence ends in the video's last sampled frame (or in the
  tail after it) is never lost. :func:`place_span` and :func:`place_instant` move such an answer: a span
  keeps its start and has its end moved back to ``(num_frames - 1) / fps`` (the end of the next-to-last
  frame), so its frames stay standby and the last frame answers; a span that starts on the last frame
  becomes an instant answer there. The turn is rewritten rather than the rule bent, so that the raw
  annotation we write still renders, through the reference converter, to exactly our labels. An
  event that starts after the last frame is never seen on the stream and cannot be placed.
* A question asked after its evidence (the answer frame precedes the question frame) is allowed, as
  in the reference: the reference also shows the first question on frame 0 (see
  :mod:`streamo_data.formats.render`), so the model has seen it before the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class State(StrEnum):
    SILENCE = "silence"
    STANDBY = "standby"
    RESPONSE = "response"


class QuestionLike(Protocol):
    content: str
    time: float


class ResponseLike(Protocol):
    content: str
    st_time: float | None
    end_time: float | None
    time: float | None


def frame_of(time_s: float, fps: float) -> int:
    """Index of the frame that ends at or contains ``time_s`` (rounded to a microsecond first, so
    that 0.1 * 3 style float noise never moves a time onto the next frame)."""
    frame = math.ceil(round(time_s * fps, 6)) - 1
    return frame if frame > 0 else 0


def answer_frame(response: ResponseLike, fps: float) -> int | None:
    """The frame on which a response is said, or None when it names no time at all."""
    if response.st_time is not None and response.end_time is not None:
        return frame_of(response.end_time, fps) + 1
    if response.time is not None:
        return frame_of(response.time, fps)
    return None


def frame_end(frame: int, fps: float) -> float:
    """The latest time that :func:`frame_of` maps to ``frame``: the inverse used to read times back
    off predicted labels (a standby run starting on frame ``a`` means evidence from ``frame_end(a)``)."""
    return (frame + 1) / fps


@dataclass(frozen=True)
class Placement:
    """Where a response goes on the frame grid: a span (``st_time``, ``end_time``) or an instant
    ``time``; ``moved`` says that the last-frame rule changed it."""

    st_time: float | None = None
    end_time: float | None = None
    time: float | None = None
    moved: bool = False


def on_stream(start_s: float, num_frames: int, fps: float) -> bool:
    """Whether evidence starting at ``start_s`` is ever shown: it starts on or before the last frame."""
    return frame_of(start_s, fps) <= num_frames - 1


def place_span(st_time: float, end_time: float, num_frames: int, fps: float) -> Placement | None:
    """A span answer under the last-frame rule; None when it starts after the last frame."""
    last = num_frames - 1
    if not on_stream(st_time, num_frames, fps):
        return None
    if frame_of(end_time, fps) + 1 <= last:
        return Placement(st_time=st_time, end_time=end_time)
    moved_end = last / fps
    if last >= 1 and st_time <= moved_end:
        return Placement(st_time=st_time, end_time=moved_end, moved=True)
    return Placement(time=min(end_time, num_frames / fps), moved=True)


def place_instant(time_s: float, seen_from: float, num_frames: int, fps: float) -> Placement | None:
    """An instant answer at ``time_s`` about evidence that starts at ``seen_from``, under the last-frame
    rule; None when the evidence starts after the last frame."""
    if not on_stream(seen_from, num_frames, fps):
        return None
    if frame_of(time_s, fps) <= num_frames - 1:
        return Placement(time=time_s)
    return Placement(time=num_frames / fps, moved=True)


def format_seconds(seconds: float) -> str:
    """Shortest exact decimal for a frame boundary: 3 -> '3', 2.5 -> '2.5'."""
    text = f"{round(seconds, 6):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def time_tag(frame: int, fps: float) -> str:
    """The user-turn tag of a frame, ``<{start}s-{end}s>``; ``<{i}s-{i+1}s>`` at 1 fps."""
    return f"<{format_seconds(frame / fps)}s-{format_seconds((frame + 1) / fps)}s>"


@dataclass
class Alignment:
    """Per-frame labels of one sample, plus every way the input failed to fit the frame grid."""

    states: list[State]
    answers: list[str]
    question_frames: dict[int, str]
    issues: list[str] = field(default_factory=list)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def align(
    questions: Sequence[QuestionLike],
    responses: Sequence[ResponseLike],
    num_frames: int,
    fps: float = 1.0,
) -> Alignment:
    states = [State.SILENCE] * num_frames
    answers = [""] * num_frames
    owner: list[int | None] = [None] * num_frames
    issues: list[str] = []

    question_frames: dict[int, str] = {}
    for index, question in enumerate(questions):
        frame = frame_of(question.time, fps)
        if frame >= num_frames:
            issues.append(
                f"question {index} ({_clip(question.content)!r}) at {question.time}s falls on frame {frame},"
                f" past the last frame {num_frames - 1}"
            )
        elif frame in question_frames:
            issues.append(f"question {index} is shown on frame {frame}, which already has a question")
        else:
            question_frames[frame] = question.content

    targets = [answer_frame(response, fps) for response in responses]  # each used twice below
    for index, response in enumerate(responses):
        target = targets[index]
        if target is None:
            issues.append(f"response {index} ({_clip(response.content)!r}) has neither a span nor a time")
            continue
        if response.st_time is not None and response.end_time is not None:
            first, stop = frame_of(response.st_time, fps), min(target, num_frames)
            if first < stop:  # whole runs at once: a span covers many frames, and this runs for every sample
                states[first:stop] = [State.STANDBY] * (stop - first)
                answers[first:stop] = [""] * (stop - first)
                owner[first:stop] = [None] * (stop - first)
        if target >= num_frames:
            issues.append(
                f"response {index} ({_clip(response.content)!r}) answers on frame {target}, past the last"
                f" frame {num_frames - 1} (the reference converter drops it)"
            )
            continue
        states[target], answers[target], owner[target] = State.RESPONSE, response.content, index

    for index, response in enumerate(responses):
        target = targets[index]
        if target is None or target >= num_frames or owner[target] == index:
            continue
        by = owner[target]
        how = f"answered by response {by} on the same frame" if by is not None else "covered by a later standby"
        issues.append(f"response {index} ({_clip(response.content)!r}) on frame {target} is lost: {how}")

    return Alignment(states=states, answers=answers, question_frames=question_frames, issues=issues)


def lossless_order(responses: Sequence[ResponseLike], fps: float) -> list[int]:
    """Indices of ``responses`` in the order that lets no answer be overwritten under the reference's
    last-writer-wins rule: latest answer first. Every write of a response lies at or before its own
    answer frame, so a response applied later (with an earlier answer) never touches a later answer."""
    return sorted(range(len(responses)), key=lambda i: -(answer_frame(responses[i], fps) or 0))
