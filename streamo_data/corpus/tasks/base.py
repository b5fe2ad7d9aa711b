"""What every task builder shares: its contract, its rejects, and turning events into aligned turns.

A builder works in two steps so that a mixture can choose before it spends: ``candidates`` lists what
it could build from a video's events (cheap: no alignment, no validation), each under a stable key;
``make`` builds one chosen candidate into a validated sample. The instruction template is drawn from
an RNG seeded by the candidate's key, so a sample does not depend on what else was chosen.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pydantic import ValidationError

from streamo_data.core.align import answer_frame, lossless_order, on_stream, place_instant, place_span
from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import (
    Event,
    EventKind,
    QuestionTurn,
    ResponseTurn,
    StreamingSample,
    VideoRecord,
    stable_id,
    too_long,
)
from streamo_data.core.text_keys import normalized

NEVER_SEEN = "evidence starts after the last sampled frame: the stream never shows it"


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
    kinds: ClassVar[frozenset[EventKind]]  # the events it reads
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


def build_all(builder: TaskBuilder, video: VideoRecord, events: Sequence[Event], seed: int) -> tuple[
        list[StreamingSample], list[Reject]]:
    """Every candidate of one video, made (the path without quotas); each event it reads that the
    stream never shows, or of a video past the maximum length, is a reject of this task."""
    samples: list[StreamingSample] = []
    long = too_long_video(video)
    if long is not None:  # checked before any per-frame work: a claimed 1e8 s would be 1e8 labels
        return [], [Reject(video.video_id, builder.name, long) for e in events if e.kind in builder.kinds]
    shown, unseen = visible_events(video, events)
    rejects = [Reject(video.video_id, builder.name, NEVER_SEEN) for e in unseen if e.kind in builder.kinds]
    for candidate in builder.candidates(video, shown):
        sample, problems = builder.make(video, candidate, task_rng(seed, candidate.key, builder.name))
        rejects.extend(problems)
        if sample is not None:
            samples.append(sample)
    return samples, rejects


def too_long_video(video: VideoRecord) -> str | None:
    """Why no sample can be made of this video because it is past the maximum length (see
    :data:`streamo_data.core.schema.MAX_VIDEO_DURATION_S`), or None."""
    return too_long(video.duration_s, video.num_frames, video.sample_fps)


def visible_events(video: VideoRecord, events: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    """Events split into those the stream shows and those that start after its last frame. Only the
    first are offered to builders, so every candidate can be made and a quota is met exactly. A video
    past the maximum length shows none (no sample of it can validate)."""
    shown: list[Event] = []
    unseen: list[Event] = []
    if too_long_video(video) is not None:
        return shown, list(events)
    _, fps, num_frames = video.grid
    for event in events:
        (shown if on_stream(event.start_s, num_frames, fps) else unseen).append(event)
    return shown, unseen


def one_per_moment(events: Sequence[Event]) -> list[Event]:
    """One description per moment (see :mod:`streamo_data.core.moments`): the member with the smallest hash
    of its id, so the choice is fixed yet spread over annotators; events without a moment stay."""
    members: dict[str, list[Event]] = {}
    for event in events:
        members.setdefault(event.moment or event.event_id, []).append(event)
    if len(members) == len(events):  # every moment has one description (most do): all stay, in order
        return list(events)
    # a moment of one description needs no hash
    keep = {id(group[0] if len(group) == 1 else min(group, key=lambda e: stable_id(moment, e.event_id)))
            for moment, group in members.items()}
    return [e for e in events if id(e) in keep]


_TIME_ORDER = operator.attrgetter("start_s", "end_s", "text")  # the same tuples as a lambda, built in C


def by_source(events: Iterable[Event], kinds: frozenset[EventKind], moments: bool = False) -> dict[
        str, list[Event]]:
    """Events of the given kinds grouped per source, each group in time order. Sources are not mixed
    in one sample: two annotators describe the same video at different granularities. With
    ``moments``, paraphrases of one moment count once (for builders that tell a sequence)."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        if event.kind in kinds:
            groups.setdefault(event.source, []).append(event)
    ordered = {source: sorted(group, key=_TIME_ORDER)
               for source, group in sorted(groups.items())}
    return {source: one_per_moment(group) for source, group in ordered.items()} if moments else ordered


def by_text(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Events grouped by their :func:`normalized` text, in order: one query, however it is spelt."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(normalized(event.text), []).append(event)
    return groups


def drop_repeats(events: Sequence[Event], said: Callable[[Event], str] = lambda e: e.text) -> list[Event]:
    """Events in time order without an immediate repeat of what they say (COIN lists one step twice in
    a row; a QA annotator may give one answer to two moments): an answer that is meant to change is
    never said twice in a row."""
    kept: list[Event] = []
    for event in sorted(events, key=lambda e: (e.start_s, e.end_s)):
        if not kept or normalized(said(kept[-1])) != normalized(said(event)):
            kept.append(event)
    return kept


def instruction(rng: random.Random, templates: Sequence[str], step_templates: Sequence[str],
                events: Sequence[Event]) -> str:
    """An instruction template; those that speak of steps, tasks or how-to videos only for events that
    are steps of a procedure (COIN, YouCook2), never for, say, a Charades home video."""
    steps = all(e.kind is EventKind.STEP for e in events)
    return rng.choice([*templates, *step_templates] if steps else list(templates))


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
        spans = [(r.st_time, r.end_time) for r in group if r.st_time is not None and r.end_time is not None]
        if spans:
            merged.append(ResponseTurn(content=text, st_time=min(start for start, _ in spans),
                                       end_time=max(end for _, end in spans)))
        else:
            merged.append(ResponseTurn(content=text, time=group[0].time))
    return merged


@dataclass(frozen=True)
class Answer:
    """What a builder wants said, before the frame grid is known: about evidence that starts at
    ``seen_from``, either once its span ends at ``end_s`` (standby until then) or at the instant ``at``."""

    content: str
    seen_from: float
    end_s: float | None = None
    at: float | None = None

    def placed(self, num_frames: int, fps: float) -> ResponseTurn | None:
        """The response turn under the last-frame rule of :mod:`streamo_data.core.align`, or None."""
        if self.end_s is not None:
            where = place_span(self.seen_from, self.end_s, num_frames, fps)
        else:
            where = place_instant(self.at if self.at is not None else self.seen_from, self.seen_from, num_frames, fps)
        if where is None:
            return None
        return ResponseTurn(content=self.content, st_time=where.st_time, end_time=where.end_time, time=where.time)


def assemble(
    task: str, video: VideoRecord, source: str, question: str, answers: Sequence[Answer],
    question_time: float = 0.0,
) -> tuple[StreamingSample | None, list[Reject]]:
    """The common end of every builder: place each answer on the frame grid (an answer due after the
    last frame is said on the last frame; one whose evidence is never shown is a counted reject),
    merge answers due on one frame, order them so none is lost, and validate."""
    rejects: list[Reject] = []
    duration_s, fps, num_frames = video.grid
    placed = []
    for answer in answers:
        response = answer.placed(num_frames, fps)
        if response is None:
            rejects.append(Reject(video.video_id, task, NEVER_SEEN))
        else:
            placed.append(response)
    if not placed:
        return None, rejects
    merged = merge_same_frame(placed, fps)
    ordered = [merged[i] for i in lossless_order(merged, fps)]
    return validated(lambda: StreamingSample.create(
        task=task, source=source, video_id=video.video_id, video_path=video.path, duration_s=duration_s,
        fps=fps, num_frames=num_frames, questions=[QuestionTurn(content=question, time=question_time)],
        responses=ordered), video, task, rejects)


def validated(
    make: Callable[[], StreamingSample], video: VideoRecord, task: str, rejects: list[Reject]
) -> tuple[StreamingSample | None, list[Reject]]:
    """Run a sample constructor; a validation failure becomes a counted Reject naming its reason."""
    try:
        return make(), rejects
    except ValidationError as error:
        return None, [*rejects, Reject(video.video_id, task, "; ".join(validation_messages(error)))]
