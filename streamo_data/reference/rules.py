"""The reference converter's own decisions, for ``raw-to-stream`` and the audit: the same decisions and the
same bytes as maifoundations/Streamo's ``scripts/convert_streaming_video.py to-stream``, on *any* raw record.

Kept apart from our rule (:mod:`streamo_data.formats.render`, through :mod:`streamo_data.core.align`), which
serves the validated path. Here nothing goes through the alignment rule: times are truncated with
``int()``, untimed or empty questions are ignored (only the first question is shown on frame 0 as a
fallback), a later question on the same frame wins, contents are formatted with ``str()``, and nothing
is validated.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder json.dump uses
from typing import Any

from streamo_data.core.align import State
from streamo_data.formats.render import DEFAULT_QUESTION, REFERENCE_SYSTEM_PROMPT, STATE_TOKENS, STREAM_TOKEN


class ReferenceAbort(ValueError):
    """The reference converter raises on this record, which aborts its whole run (nothing is written);
    we drop the record alone and say why."""


def reference_time(value: Any, fps: float) -> int | None:
    """The reference's ``parse_time``: numbers (``True`` included) and integer strings are truncated to
    whole units as they are, fractional and ``MM:SS`` strings are scaled by ``fps`` and truncated, and
    anything unreadable is None. NaN and infinite numbers make the reference raise: ReferenceAbort."""
    if value is None or (isinstance(value, str) and value == ""):
        return None
    try:
        if isinstance(value, int | float):
            return int(value)
        text = str(value).strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return int(float(text) * fps)
        except ValueError:
            pass
        parts = text.split(":")
        try:
            if len(parts) == 2:
                minutes, seconds = map(float, parts)
                return int((minutes * 60 + seconds) * fps)
            if len(parts) == 3:
                hours, minutes, seconds = map(float, parts)
                return int((hours * 3600 + minutes * 60 + seconds) * fps)
        except ValueError:
            pass
        return None
    except (ValueError, OverflowError) as error:
        raise ReferenceAbort(f"time {value!r} cannot be converted ({error})") from error


def _reference_frame(time: int) -> int:
    """A time of ``t`` names frame ``t - 1`` (the interval ``<t-1 s - t s>``); zero and below name frame 0."""
    return max(0, time - 1) if time > 0 else 0


def reference_turns(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``record[key]`` as the reference iterates it; what makes it raise is a ReferenceAbort."""
    turns = record.get(key, [])
    if isinstance(turns, str | dict) and not turns:
        return []  # iterating "" or {} yields nothing, and both are falsy for the frame-0 fallback
    if not isinstance(turns, list):
        raise ReferenceAbort(f"'{key}' is a {type(turns).__name__}, not a list of objects")
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ReferenceAbort(f"{key} {index} is a {type(turn).__name__}, not an object")
    return turns


@dataclass
class ReferenceFrames:
    """Per frame: the assistant turn and the question shown; plus what the reference silently lost."""

    states: list[str]
    questions: dict[int, Any]
    losses: list[str] = field(default_factory=list)


def _clip(value: Any, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def reference_frames(
    num_frames: int, questions: list[dict[str, Any]], responses: list[dict[str, Any]], fps: float,
    default_question: str = DEFAULT_QUESTION,
) -> ReferenceFrames:
    """The reference's ``build_frame_states`` plus its frame-0 fallback, with each loss named."""
    silence, standby, response = (STATE_TOKENS[s] for s in (State.SILENCE, State.STANDBY, State.RESPONSE))
    states = [silence] * num_frames
    shown: dict[int, Any] = {}
    asker: dict[int, int] = {}
    question_frames: list[int | None] = []
    for index, question in enumerate(questions):
        content, time = question.get("content", ""), reference_time(question.get("time"), fps)
        frame = _reference_frame(time) if content and time is not None else None
        question_frames.append(frame)
        if frame is not None and frame < num_frames:
            shown[frame], asker[frame] = content, index

    answerer: dict[int, int] = {}
    answer_frames: list[int | None] = []
    for index, turn in enumerate(responses):
        content = turn.get("content", "")
        st_time = reference_time(turn.get("st_time"), fps)
        end_time = reference_time(turn.get("end_time"), fps)
        time = reference_time(turn.get("time"), fps)
        target: int | None = None
        if st_time is not None and end_time is not None:
            end_frame = _reference_frame(end_time)
            first, stop = _reference_frame(st_time), min(end_frame + 1, num_frames)
            if first < stop:
                states[first:stop] = [standby] * (stop - first)
                for frame in [f for f in answerer if first <= f < stop]:
                    del answerer[frame]
            target = end_frame + 1
        elif time is not None:
            target = _reference_frame(time)
        answer_frames.append(target)
        if target is not None and target < num_frames and content:
            states[target] = f"{response} {content}"
            answerer[target] = index

    fallback = 0 not in shown
    if fallback:
        shown[0] = questions[0]["content"] if questions and questions[0].get("content") else default_question
    losses = _question_losses(questions, question_frames, asker, num_frames, fallback)
    losses += _response_losses(responses, answer_frames, answerer, num_frames)
    return ReferenceFrames(states=states, questions=shown, losses=losses)


def _question_losses(questions: list[dict[str, Any]], frames: list[int | None], asker: dict[int, int],
                     num_frames: int, fallback: bool) -> list[str]:
    losses = []
    for index, (question, frame) in enumerate(zip(questions, frames, strict=True)):
        content = question.get("content", "")
        if not content or (frame is not None and asker.get(frame) == index) or (index == 0 and fallback):
            continue
        if frame is None:
            why = f"its time {question.get('time')!r} is missing or unreadable"
        elif frame >= num_frames:
            why = f"it falls on frame {frame}, past the last frame {num_frames - 1}"
        else:
            why = f"question {asker[frame]} replaces it on frame {frame}"
        losses.append(f"question {index} ({_clip(content)}) is never shown: {why}")
    return losses


def _response_losses(responses: list[dict[str, Any]], frames: list[int | None], answerer: dict[int, int],
                     num_frames: int) -> list[str]:
    losses = []
    for index, (turn, frame) in enumerate(zip(responses, frames, strict=True)):
        content = turn.get("content", "")
        if not content or (frame is not None and answerer.get(frame) == index):
            continue
        if frame is None:
            why = "it has no readable span or time"
        elif frame >= num_frames:
            why = f"it answers on frame {frame}, past the last frame {num_frames - 1}"
        elif frame in answerer:
            why = f"response {answerer[frame]} answers on the same frame {frame}"
        else:
            why = f"a later standby covers frame {frame}"
        losses.append(f"response {index} ({_clip(content)}) is lost: {why}")
    return losses


def reference_video_path(record: dict[str, Any]) -> Any:
    """``video_path``, else the first of ``videos`` (or ``videos`` itself when it is not a list)."""
    path = record.get("video_path", "")
    if not path:
        videos = record.get("videos", [])
        if videos:
            path = videos[0] if isinstance(videos, list) else videos
    return path


@dataclass
class ReferenceRecord:
    """One stream-format record as the reference builds it, kept flat so that it encodes fast."""

    video_path: str
    frames: ReferenceFrames
    system_prompt: str
    metadata: list[tuple[str, Any]]

    def messages(self) -> Iterator[tuple[str, str]]:
        yield "system", self.system_prompt
        shown = self.frames.questions
        for index, state in enumerate(self.frames.states):
            tag = f"<{index}s-{index + 1}s>\n{STREAM_TOKEN}"
            yield "user", f"{shown[index]}\n{tag}" if index in shown else tag
            yield "assistant", state

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"messages": [{"role": role, "content": content} for role, content in self.messages()],
                                  "videos": [self.video_path]}
        record.update(self.metadata)
        return record


def reference_record(record: dict[str, Any], video_path: str, num_frames: int, fps: float,
                     system_prompt: str | None = None, default_question: str = DEFAULT_QUESTION) -> ReferenceRecord:
    """The reference's ``convert_format_to_stream`` once the video is found and counted; raises
    ReferenceAbort where the reference raises."""
    questions, responses = reference_turns(record, "question"), reference_turns(record, "response")
    frames = reference_frames(num_frames, questions, responses, fps, default_question)
    metadata: list[tuple[str, Any]] = [(key, record[key]) for key in ("video_name", "task_type", "source")
                                       if key in record and record[key]]
    return ReferenceRecord(video_path, frames, system_prompt or REFERENCE_SYSTEM_PROMPT, metadata)


_INDENT = "  "


def _encode_message(depth: int, role: str, content: str) -> str:
    inner = _INDENT * (depth + 1)
    return (f'{_INDENT * depth}{{\n{inner}"role": "{role}",\n{inner}"content": {encode_basestring(content)}\n'
            f"{_INDENT * depth}}}")


@functools.lru_cache(maxsize=1 << 16)
def _encoded_plain_frame(depth: int, frame: int, state: str) -> str:
    """A frame without a question whose assistant turn is silence or standby: the same text in every
    record, so it is encoded once."""
    return _encode_frame(depth, frame, None, state)


def _encode_frame(depth: int, frame: int, question: Any, state: str) -> str:
    tag = f"<{frame}s-{frame + 1}s>\n{STREAM_TOKEN}"
    user = tag if question is None else f"{question}\n{tag}"
    return f"{_encode_message(depth, 'user', user)},\n{_encode_message(depth, 'assistant', state)}"


_PLAIN_STATES = frozenset({STATE_TOKENS[State.SILENCE], STATE_TOKENS[State.STANDBY]})


def encode_reference_record(record: ReferenceRecord, depth: int) -> str:
    """Exactly what ``json.dump(..., ensure_ascii=False, indent=2)`` writes for this record when it sits
    ``depth`` containers deep (1 inside the output list, 0 when it is the whole file), without building
    the nested dicts or running json's pure-Python indenting encoder."""
    key, item = _INDENT * (depth + 1), depth + 2
    shown = record.frames.questions
    parts = [_encoded_system_prompt(item, record.system_prompt)]
    for frame, state in enumerate(record.frames.states):
        if frame not in shown and state in _PLAIN_STATES:
            parts.append(_encoded_plain_frame(item, frame, state))
        else:
            parts.append(_encode_frame(item, frame, shown.get(frame), state))
    messages = ",\n".join(parts)
    fields = [f'{{\n{key}"messages": [\n{messages}\n{key}],\n{key}"videos": [\n{_INDENT * item}'
              f"{encode_basestring(record.video_path)}\n{key}]"]
    for name, value in record.metadata:
        encoded = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n" + key)
        fields.append(f'{key}"{name}": {encoded}')
    return ",\n".join(fields) + f"\n{_INDENT * depth}}}"


@functools.lru_cache(maxsize=8)
def _encoded_system_prompt(depth: int, prompt: str) -> str:
    return _encode_message(depth, "system", prompt)
