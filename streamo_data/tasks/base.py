"""What every task builder shares: its contract, its rejects, and turning events into aligned turns.

A builder works in two steps so that a mixture can choose before it spends: ``candidates`` lists what
it could build from a video's events (cheap: no alignment, no validation), each under a stable key;
``make`` builds one chosen candidate into a validated sample. The instruction template is drawn from
an RNG seeded by the candidate's key, so a sample does not depend on what else was chosen.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pydantic import ValidationError

from streamo_data.align import answer_frame, frame_of, lossless_order
from streamo_data.reasons import validation_messages
from streamo_data.schema import Event, EventKind, QuestionTurn, ResponseTurn, StreamingSample, VideoRecord, stable_id

NO_FRAME_LEFT = "event ends on the last frame: no frame is left on which to answer"


@dataclass(frozen=True)
class Reject:
    """Something a builder could not turn into a valid sample, and why (counted, never dropped silently)."""

    video_id: str
    task: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    """One sample a builder could make: the events it would use, under a key unique in the corpus."""

    key: str
    source: str
    events: tuple[Event, ...]


class TaskBuilder(Protocol):
    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        ...

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        ...


def task_rng(seed: int, key: str, task: str) -> random.Random:
    """An RNG per (seed, candidate, task): results do not depend on which worker ran what, in which
    order, or on which other candidates a mixture chose."""
    return random.Random(stable_id(seed, key, task))


def usable_events(video: VideoRecord, events: Sequence[Event]) -> tuple[list[Event], int]:
    """Events that leave a frame to answer on after they end, and how many do not. An event ending on
    the last sampled frame can be seen but never answered in a stream; builders never see it, so
    that a mixture's quota counts only candidates that can be made."""
    last = video.num_frames or 0
    usable = [e for e in events if frame_of(e.end_s, video.sample_fps) + 1 < last]  # type: ignore[arg-type]
    return usable, len(events) - len(usable)


def build_all(builder: TaskBuilder, video: VideoRecord, events: Sequence[Event], seed: int) -> tuple[
        list[StreamingSample], list[Reject]]:
    """Every candidate of one video, made (the path without quotas)."""
    samples: list[StreamingSample] = []
    usable, unusable = usable_events(video, events)
    rejects = [Reject(video.video_id, builder.name, NO_FRAME_LEFT)] * unusable
    for candidate in builder.candidates(video, usable):
        sample, problems = builder.make(video, candidate, task_rng(seed, candidate.key, builder.name))
        rejects.extend(problems)
        if sample is not None:
            samples.append(sample)
    return samples, rejects


def by_source(events: Iterable[Event], kinds: frozenset[EventKind]) -> dict[str, list[Event]]:
    """Events of the given kinds grouped per source, each group in time order. Sources are not mixed
    in one sample: two annotators describe the same video at different granularities."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        if event.kind in kinds:
            groups.setdefault(event.source, []).append(event)
    return {source: sorted(group, key=lambda e: (e.start_s, e.end_s, e.text))
            for source, group in sorted(groups.items())}


def format_time(seconds: float) -> str:
    """Seconds as people write them in answers: 3 -> '3s', 2.5 -> '2.5s'."""
    return f"{round(seconds, 1):g}s"


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
        text = " ".join(dict.fromkeys(r.content for r in group))
        spans = [r for r in group if r.st_time is not None and r.end_time is not None]
        if spans:
            merged.append(ResponseTurn(content=text, st_time=min(r.st_time for r in spans),  # type: ignore[type-var]
                                       end_time=max(r.end_time for r in spans)))  # type: ignore[type-var]
        else:
            merged.append(ResponseTurn(content=text, time=group[0].time))
    return merged


def assemble(
    task: str, video: VideoRecord, source: str, question: str, responses: list[ResponseTurn],
    question_time: float = 0.0,
) -> tuple[StreamingSample | None, list[Reject]]:
    """The common end of every builder: drop answers that would fall past the last frame (each one a
    counted reject), merge answers due on one frame, order them so none is lost, and validate."""
    rejects: list[Reject] = []
    fps, last = video.sample_fps, video.num_frames  # type: ignore[assignment]
    kept = []
    for response in responses:
        if (answer_frame(response, fps) or 0) < last:  # type: ignore[arg-type,operator]
            kept.append(response)
        else:
            rejects.append(Reject(video.video_id, task, NO_FRAME_LEFT))
    if not kept:
        return None, rejects
    merged = merge_same_frame(kept, fps)  # type: ignore[arg-type]
    ordered = [merged[i] for i in lossless_order(merged, fps)]  # type: ignore[arg-type]
    return validated(lambda: StreamingSample.create(
        task=task, source=source, video_id=video.video_id, video_path=video.path, duration_s=video.duration_s,
        fps=fps, num_frames=video.num_frames, questions=[QuestionTurn(content=question, time=question_time)],
        responses=ordered), video, task, rejects)


def validated(
    make: Callable[[], StreamingSample], video: VideoRecord, task: str, rejects: list[Reject]
) -> tuple[StreamingSample | None, list[Reject]]:
    """Run a sample constructor; a validation failure becomes a counted Reject naming its reason."""
    try:
        return make(), rejects
    except ValidationError as error:
        return None, [*rejects, Reject(video.video_id, task, "; ".join(validation_messages(error)))]
