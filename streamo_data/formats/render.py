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
   exactly that, and :func:`streamo_data.core.align.align` reports each such loss as an issue; samples that
   we build never have one (see :func:`streamo_data.core.align.lossless_order`).
4. Two questions on one frame: the later one is shown.
5. The time tag is ``<{i}s-{i+1}s>`` with the frame index ``i``; at other fps we tag true seconds
   (``<0.5s-1s>``), the reference would still write indices.
6. Times: the reference reads integer strings as whole seconds and truncates fractional ones; we keep
   seconds as given and place them by the rule in :mod:`streamo_data.core.align` (identical for whole
   seconds at 1 fps). A question without a time is taken as asked at 0 s.
7. ``video_name``, ``task_type`` and ``source`` are copied after ``messages`` and ``videos``, and only
   when non-empty.

Those rules serve the validated path (``render_stream``, used by ``streamo export stream-format``). The
``raw-to-stream`` path must instead reproduce the reference converter on *any* raw record, bug for bug:
that is :mod:`streamo_data.reference.rules`, kept apart from our rule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from streamo_data.core.align import QuestionLike, ResponseLike, State, align, time_tag
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample

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
