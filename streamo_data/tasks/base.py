"""What every task builder shares: its contract, its rejects, and turning events into aligned turns."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pydantic import ValidationError

from streamo_data.align import answer_frame, lossless_order
from streamo_data.reasons import validation_messages
from streamo_data.schema import Event, ResponseTurn, StreamingSample, VideoRecord, stable_id


@dataclass(frozen=True)
class Reject:
    """Something a builder could not turn into a valid sample, and why (counted, never dropped silently)."""

    video_id: str
    task: str
    reason: str


class TaskBuilder(Protocol):
    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]

    def build(self, video: VideoRecord, events: Sequence[Event], rng: random.Random) -> tuple[
        list[StreamingSample], list[Reject]]:
        ...


def task_rng(seed: int, video_id: str, task: str) -> random.Random:
    """An RNG per (seed, video, task): results do not depend on which worker ran what, or in which order."""
    return random.Random(stable_id(seed, video_id, task))


def format_time(seconds: float) -> str:
    """Seconds as people write them in answers: 3 -> '3s', 2.5 -> '2.5s'."""
    return f"{round(seconds, 1):g}s"


NO_FRAME_LEFT = "event ends on the last frame: no frame is left on which to answer"


def answers_in_time(response: ResponseTurn, video: VideoRecord) -> bool:
    """Whether the frame on which ``response`` is said still exists in the video."""
    return (answer_frame(response, video.sample_fps) or 0) < video.num_frames  # type: ignore[arg-type,operator]


def order_without_loss(responses: list[ResponseTurn], fps: float) -> list[ResponseTurn]:
    """Responses in the order in which the reference converter loses none of them."""
    return [responses[i] for i in lossless_order(responses, fps)]


def merge_same_frame(responses: list[ResponseTurn], fps: float) -> list[ResponseTurn]:
    """Two answers due on the same frame become one answer there (texts joined, spans united), since a
    frame carries one label; dropping either would lose an event."""
    by_frame: dict[int, list[ResponseTurn]] = {}
    for response in responses:
        by_frame.setdefault(answer_frame(response, fps) or 0, []).append(response)
    merged: list[ResponseTurn] = []
    for group in by_frame.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        text = " ".join(r.content for r in group)
        spans = [r for r in group if r.st_time is not None]
        if spans:
            merged.append(ResponseTurn(content=text, st_time=min(r.st_time for r in spans),  # type: ignore[type-var]
                                       end_time=max(r.end_time for r in spans)))  # type: ignore[type-var]
        else:
            merged.append(ResponseTurn(content=text, time=group[0].time))
    return merged


def validated(
    make: Callable[[], StreamingSample], video: VideoRecord, task: str, rejects: list[Reject]
) -> StreamingSample | None:
    """Run a sample constructor; a validation failure becomes a counted Reject naming its reason."""
    try:
        return make()
    except ValidationError as error:
        rejects.append(Reject(video.video_id, task, "; ".join(validation_messages(error))))
        return None
