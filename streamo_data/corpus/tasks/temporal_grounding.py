"""Temporal grounding in a stream: given a description, stay silent until it starts, stand by while it
unfolds, and answer with its time span as soon as it is over (once per occurrence)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord
from streamo_data.corpus.tasks.base import Answer, Candidate, Reject, assemble, by_source, by_text, format_time

GROUNDABLE = frozenset({EventKind.CAPTION, EventKind.ACTION, EventKind.STEP, EventKind.HIGHLIGHT})


class TemporalGrounding:
    name: ClassVar[str] = "temporal_grounding"
    kinds: ClassVar[frozenset[EventKind]] = GROUNDABLE
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
        'Each time this happens, tell me when: "{query}"',
    )
    answers: ClassVar[tuple[str, ...]] = (
        "It happened from {start} to {end}.",
        "That was between {start} and {end}.",
        "The event spans {start} to {end}.",
        "From {start} to {end}.",
    )

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        """One candidate per distinct description and source: a description that occurs several times
        (compared as :func:`normalized` text) is grounded at each occurrence in one sample, as
        QVHighlights' multi-window queries are. Keyed by that text, so two spellings of one query
        never become two candidates of one sample."""
        found = []
        for source, group in by_source(events, GROUNDABLE).items():
            for text, occurrences in by_text(group).items():
                found.append(Candidate(f"{video.video_id}/{self.name}/{source}/{text}", source, tuple(occurrences)))
        return found

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        query = candidate.events[0].text.rstrip(".")
        question = rng.choice(self.templates).format(query=query)
        answer = rng.choice(self.answers)
        answers = [Answer(answer.format(start=format_time(e.start_s), end=format_time(e.end_s)),
                          seen_from=e.start_s, end_s=e.end_s) for e in candidate.events]
        return assemble(self.name, video, candidate.source, question, answers)
