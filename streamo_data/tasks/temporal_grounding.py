"""Temporal grounding in a stream: given a description, stay silent until it starts, stand by while it
unfolds, and answer with its time span as soon as it is over."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.schema import Event, EventKind, QuestionTurn, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.tasks.base import NO_FRAME_LEFT, Reject, answers_in_time, format_time, validated

GROUNDABLE = frozenset({EventKind.CAPTION, EventKind.ACTION, EventKind.STEP, EventKind.HIGHLIGHT})


class TemporalGrounding:
    name: ClassVar[str] = "temporal_grounding"
    templates: ClassVar[tuple[str, ...]] = (
        'Tell me when this happens in the video: "{query}"',
        'Watch the stream and report the moment that matches: "{query}"',
        'When does the following occur? "{query}"',
        'Find the segment where this happens: "{query}"',
        'Let me know once this has happened, and when: "{query}"',
        'Locate this event in time as the video plays: "{query}"',
        'At what time does this take place? "{query}"',
        'Keep watching and give the start and end time of: "{query}"',
        'Identify when the video shows the following: "{query}"',
        'Report the time span of this event once it ends: "{query}"',
    )
    answers: ClassVar[tuple[str, ...]] = (
        "It happened from {start} to {end}.",
        "That was between {start} and {end}.",
        "The event spans {start} to {end}.",
    )

    def build(self, video: VideoRecord, events: Sequence[Event], rng: random.Random) -> tuple[
            list[StreamingSample], list[Reject]]:
        candidates = [e for e in events if e.kind in GROUNDABLE]
        repeated = {text for text, n in Counter(e.text for e in candidates).items() if n > 1}
        samples: list[StreamingSample] = []
        rejects: list[Reject] = []
        for event in sorted(candidates, key=lambda e: (e.start_s, e.end_s, e.text)):
            if event.text in repeated:
                rejects.append(Reject(video.video_id, self.name, "ambiguous query: the same text describes"
                                      " two events of this video"))
                continue
            query = event.text.rstrip(".")
            question = QuestionTurn(content=rng.choice(self.templates).format(query=query), time=0.0)
            answer = rng.choice(self.answers).format(start=format_time(event.start_s), end=format_time(event.end_s))
            response = ResponseTurn(content=answer, st_time=event.start_s, end_time=event.end_s)
            if not answers_in_time(response, video):
                rejects.append(Reject(video.video_id, self.name, NO_FRAME_LEFT))
                continue
            sample = validated(lambda q=question, r=response, e=event: StreamingSample.create(
                task=self.name, source=e.source, video_id=video.video_id, video_path=video.path,
                duration_s=video.duration_s, fps=video.sample_fps, num_frames=video.num_frames,
                questions=[q], responses=[r]), video, self.name, rejects)
            if sample is not None:
                samples.append(sample)
        return samples, rejects
