"""The two formats of the reference implementation (maifoundations/Streamo): raw annotation and stream.

Researchers train with the reference ms-swift trainer, so what we render must be byte-for-byte what
its converter (`scripts/convert_streaming_video.py to-stream`) writes for the same raw records and
videos. Its quirks are reproduced on purpose, each one documented here:

1. Frame count: OpenCV's native frame count divided (integer division) by the whole number of native
   frames per sampled frame, ``max(1, int(native_fps / fps))``
   (see :func:`streamo_data.video.probe.sampled_frame_count`).
2. The question of frame 0: if no question falls on frame 0, the *first* question is shown there too
   (or a default instruction when there is none), so a question asked at 5 s appears on frame 0 and
   again on frame 4.
3. Last writer wins: responses are applied in list order; a later span's standby or a later answer on
   the same frame overwrites an earlier answer, and answers past the last frame are dropped. We render
   exactly that, and :func:`streamo_data.align.align` reports each such loss as an issue; samples that
   we build never have one (see :func:`streamo_data.align.lossless_order`).
4. Two questions on one frame: the later one is shown.
5. The time tag is ``<{i}s-{i+1}s>`` with the frame index ``i``; at other fps we tag true seconds
   (``<0.5s-1s>``), the reference would still write indices.
6. Times: the reference reads integer strings as whole seconds and truncates fractional ones; we keep
   seconds as given and place them by the rule in :mod:`streamo_data.align` (identical for whole
   seconds at 1 fps). A question without a time is taken as asked at 0 s.
7. ``video_name``, ``task_type`` and ``source`` are copied after ``messages`` and ``videos``, and only
   when non-empty.

Those rules serve the validated path (``render_stream``, used by ``streamo export stream-format``). The
``raw-to-stream`` path must instead reproduce the reference converter on *any* raw record, so it has its
own re-implementation below (:func:`reference_time`, :func:`reference_frames`, :func:`reference_record`)
that does not go through :mod:`streamo_data.align`: times are truncated with ``int()``, untimed or empty
questions are ignored (only the first question is shown on frame 0 as a fallback), a later question on
the same frame wins, contents are formatted with ``str()``, and nothing is validated.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder json.dump uses
from typing import Any

from streamo_data.align import QuestionLike, ResponseLike, State, align, time_tag
from streamo_data.schema import QuestionTurn, ResponseTurn, StreamingSample

STREAM_TOKEN = "<stream>"
IMAGE_TOKEN = "<image>"
DEFAULT_QUESTION = "Find all significant events in the video and describe them."

# The reference's default system prompt, verbatim (trailing spaces included): the trainer's data must
# match it byte for byte.
REFERENCE_SYSTEM_PROMPT = (
    "\n"
    "You are a helpful assistant specializing in streaming video analysis. \n"
    "You will receive input frame by frame, each labeled with absolute time intervals \n"
    "in the exact format <Xs-Ys> (e.g., <0s-1s>). Follow these rules precisely:\n"
    "\n"
    "1. Use </Silence> when:\n"
    "   - No relevant event has started, OR\n"
    "   - The current input is irrelevant to the given question.  \n"
    "\n"
    "2. Use </Standby> when:\n"
    "   - An event is in progress but has not yet completed, OR\n"
    "   - The current input is relevant but the question cannot yet be answered.  \n"
    "\n"
    "3. Use </Response> only when:\n"
    "   - An event has fully concluded, OR\n"
    "   - The available information is sufficient to fully answer the question.\n"
    "   Provide a complete description at this point.  \n"
    "\n"
    "Do not provide partial answers or speculate beyond the given information.  \n"
    "Whenever you deliver an answer, begin with </Response>.\n"
)

STATE_TOKENS: dict[State, str] = {
    State.SILENCE: "</Silence>",
    State.STANDBY: "</Standby>",
    State.RESPONSE: "</Response>",
}


def parse_raw_time(value: Any) -> float | None:
    """Seconds from a raw time: a number, a numeric string, "MM:SS" or "HH:MM:SS"; empty is None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    parts = text.split(":")
    if len(parts) in (2, 3):
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if numbers:
            seconds = 0.0
            for number in numbers:
                seconds = seconds * 60 + number
            return seconds
    raise ValueError(f"cannot read {value!r} as a time")


def turns_from_raw(record: dict[str, Any]) -> tuple[list[QuestionTurn], list[ResponseTurn]]:
    """The question and response turns of one raw record; raises ValueError naming what is wrong."""
    questions_raw = record.get("question") or []
    responses_raw = record.get("response") or []
    if not isinstance(questions_raw, list) or not isinstance(responses_raw, list):
        raise ValueError("'question' and 'response' must be lists")
    for key, turns in (("question", questions_raw), ("response", responses_raw)):
        for index, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise ValueError(f"{key} {index} is {type(turn).__name__}, not an object")
    questions = [
        QuestionTurn(content=q.get("content", ""), time=parse_raw_time(q.get("time")) or 0.0)
        for q in questions_raw
    ]
    responses = [
        ResponseTurn(
            content=r.get("content", ""),
            st_time=parse_raw_time(r.get("st_time")),
            end_time=parse_raw_time(r.get("end_time")),
            time=parse_raw_time(r.get("time")),
        )
        for r in responses_raw
    ]
    return questions, responses


def render_stream(
    *,
    questions: Sequence[QuestionLike],
    responses: Sequence[ResponseLike],
    num_frames: int,
    fps: float,
    video_path: str,
    video_name: str | None = None,
    task_type: str | None = None,
    source: str | None = None,
    system_prompt: str = REFERENCE_SYSTEM_PROMPT,
    default_question: str = DEFAULT_QUESTION,
) -> dict[str, Any]:
    """One stream-format record: a system prompt, then a user/assistant pair per sampled frame."""
    alignment = align(questions, responses, num_frames, fps)
    shown = dict(alignment.question_frames)
    if 0 not in shown:
        shown[0] = questions[0].content if questions and questions[0].content else default_question

    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
    for frame in range(num_frames):
        tag = time_tag(frame, fps)
        user = f"{shown[frame]}\n{tag}\n{STREAM_TOKEN}" if frame in shown else f"{tag}\n{STREAM_TOKEN}"
        state = alignment.states[frame]
        token = STATE_TOKENS[state]
        assistant = f"{token} {alignment.answers[frame]}" if state is State.RESPONSE else token
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})

    record: dict[str, Any] = {"messages": messages, "videos": [video_path]}
    for key, value in (("video_name", video_name), ("task_type", task_type), ("source", source)):
        if value:
            record[key] = value
    return record


def render_sample(sample: StreamingSample, video_root: str | None = None, **options: Any) -> dict[str, Any]:
    """Stream format of a validated sample; ``video_root`` is joined in front of its relative path."""
    path = os.path.join(video_root, sample.video_path) if video_root else sample.video_path
    return render_stream(
        questions=sample.questions, responses=sample.responses, num_frames=sample.num_frames,
        fps=sample.fps, video_path=path, video_name=sample.video_name, task_type=sample.task,
        source=sample.source, **options,
    )


def dumps_records(records: Iterable[dict[str, Any]], as_json_list: bool) -> str:
    """JSONL (one record a line), or the reference's own file layout: a JSON list with indent=2."""
    if as_json_list:
        return json.dumps(list(records), ensure_ascii=False, indent=2)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def iter_record_text(records: Iterable[dict[str, Any]], as_json_list: bool) -> Iterator[str]:
    """The text of :func:`dumps_records`, byte for byte, one record at a time, so a writer holds one
    record in memory. In the JSON list every line of an element is indented two more spaces: json.dumps
    escapes newlines inside strings, so each element's own lines are exactly its ``indent=2`` lines."""
    if not as_json_list:
        for record in records:
            yield json.dumps(record, ensure_ascii=False) + "\n"
        return
    first = True
    for record in records:
        body = json.dumps(record, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        yield ("[\n  " if first else ",\n  ") + body
        first = False
    yield "[]" if first else "\n]"


def to_image_record(stream_record: dict[str, Any], images: Sequence[str]) -> dict[str, Any]:
    """A stream-format record in the image format that the reference preprocessor makes of it:
    ``<stream>`` becomes ``<image>`` in every message, ``images`` (one per frame turn) follows
    ``messages``, the video fields are dropped and the other fields keep their order."""
    messages = [
        {**message, "content": message["content"].replace(STREAM_TOKEN, IMAGE_TOKEN)}
        if isinstance(message.get("content"), str) else dict(message)
        for message in stream_record["messages"]
    ]
    record: dict[str, Any] = {"messages": messages, "images": list(images)}
    for key, value in stream_record.items():
        if key not in ("messages", "videos", "video", "video_path", "images"):
            record[key] = value
    return record


# ---------------------------------------------------------------------------------------------------
# The reference converter itself, for `raw-to-stream`: same decisions, same bytes, on any raw record.
# ---------------------------------------------------------------------------------------------------


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
