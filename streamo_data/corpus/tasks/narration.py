"""Real-time narration: running commentary that speaks up whenever something new starts happening and
stays silent in between. A narration event (an instant, from the narration annotator) is said on the
frame where it happens; a caption used as narration is said one frame after its event starts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord
from streamo_data.corpus.tasks.base import Answer, Candidate, Reject, assemble, by_source

NARRATED = frozenset({EventKind.NARRATION, EventKind.CAPTION})
MIN_EVENTS = 2  # commentary on a single event is dense captioning, not narration


class Narration:
    name: ClassVar[str] = "narration"
    kinds: ClassVar[frozenset[EventKind]] = NARRATED
    templates: ClassVar[tuple[str, ...]] = (
        "Narrate what is happening in the video as it happens.",
        "Give me a live commentary of this video.",
        "Describe the scene in real time, whenever something new happens.",
        "Act as a live commentator: tell me what is going on as it unfolds.",
        "Keep me informed about what happens in the stream, as it happens.",
        "Provide running commentary on the video.",
        "Tell me each time something new starts happening.",
        "Describe the video live, as if for someone who cannot see it.",
        "Commentate on this video in real time.",
        "Speak up whenever the scene changes and say what is happening.",
    )

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        return [Candidate(f"{video.video_id}/{self.name}/{source}", source, tuple(group))
                for source, group in by_source(events, NARRATED, moments=True).items() if len(group) >= MIN_EVENTS]

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        lag = 1.0 / video.grid.fps
        answers = [Answer(e.text, seen_from=e.start_s, at=min(e.start_s + lag, e.end_s)) for e in candidate.events]
        return assemble(self.name, video, candidate.source, rng.choice(self.templates), answers)
