"""Offline QA: a question about the video, answered once, as soon as all of its evidence has been seen.

Questions come from qa events (annotated or generated QA pairs with their evidence span), and from
consecutive events of one source ("what happens right after X?", evidence from the start of X to the
end of what follows it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.schema import Event, EventKind, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.tasks.base import Candidate, Reject, assemble, by_source

SEQUENTIAL = frozenset({EventKind.ACTION, EventKind.STEP, EventKind.CAPTION})


class OfflineQA:
    name: ClassVar[str] = "offline_qa"
    templates: ClassVar[tuple[str, ...]] = (
        'What happens right after this: "{before}"?',
        'What does the video show next, after "{before}"?',
        'Once this is over, what comes next? "{before}"',
        'After the moment described as "{before}", what happens?',
        'What follows "{before}" in this video?',
        'Tell me what happens immediately after: "{before}"',
        'What is the next event after "{before}"?',
        'Describe what happens once "{before}" has finished.',
        'What do we see after "{before}"?',
        'Following "{before}", what takes place?',
    )

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        answers: dict[tuple[str, str], set[str | None]] = {}
        for e in events:
            if e.kind is EventKind.QA:
                answers.setdefault((e.source, e.text), set()).add(e.answer)
        # a question whose answer changes over the video is time-sensitive, not offline
        found = [Candidate(f"{video.video_id}/{self.name}/{e.source}/{e.event_id}", e.source, (e,))
                 for e in events if e.kind is EventKind.QA and len(answers[(e.source, e.text)]) == 1]
        for source, group in by_source(events, SEQUENTIAL).items():
            for before, after in zip(group, group[1:], strict=False):
                if after.start_s >= before.start_s and after.end_s >= before.end_s and after.text != before.text:
                    key = f"{video.video_id}/{self.name}/{source}/{before.event_id}>{after.event_id}"
                    found.append(Candidate(key, source, (before, after)))
        return found

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        if len(candidate.events) == 1:
            event = candidate.events[0]
            question, answer, start, end = event.text, event.answer, event.start_s, event.end_s
        else:
            before, after = candidate.events
            question = rng.choice(self.templates).format(before=before.text.rstrip("."))
            answer, start, end = after.text, before.start_s, after.end_s
        response = ResponseTurn(content=answer, st_time=start, end_time=end)  # type: ignore[arg-type]
        return assemble(self.name, video, candidate.source, question, [response])
