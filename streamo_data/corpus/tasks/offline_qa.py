"""Offline QA: a question about the video, answered as soon as all of its evidence has been seen (at
each occurrence, when the same question fits several moments of one video).

Questions come from qa events (annotated or generated QA pairs with their evidence span), and from
consecutive moments of one source ("what happens right after X?", evidence from the start of X to the
end of what follows it; paraphrases of X are one moment, never an answer to it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord
from streamo_data.core.text_keys import normalized
from streamo_data.corpus.tasks.base import Answer, Candidate, Reject, assemble, by_source, by_text

SEQUENTIAL = frozenset({EventKind.ACTION, EventKind.STEP, EventKind.CAPTION})


class OfflineQA:
    name: ClassVar[str] = "offline_qa"
    kinds: ClassVar[frozenset[EventKind]] = SEQUENTIAL | {EventKind.QA}
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
        """One candidate per distinct question (as :func:`normalized` text) and source, answered at
        every occurrence of its evidence in one sample, as grounding does: two samples asking the
        same question of one video would teach contradicting labels for the same frames."""
        found = []
        for source, group in by_source(events, frozenset({EventKind.QA})).items():
            for question, occurrences in by_text(group).items():
                # a question whose answer changes over the video is time-sensitive, not offline
                if len({normalized(e.answer or "") for e in occurrences}) == 1:
                    found.append(Candidate(f"{video.video_id}/{self.name}/{source}/qa/{question}", source,
                                           tuple(occurrences)))
        for source, group in by_source(events, SEQUENTIAL, moments=True).items():
            after_of: dict[str, list[Event]] = {}
            for before, after in zip(group, group[1:], strict=False):
                if (after.start_s >= before.start_s and after.end_s >= before.end_s
                        and normalized(after.text) != normalized(before.text)):
                    after_of.setdefault(normalized(before.text), []).extend((before, after))
            for before_text, pairs in after_of.items():
                found.append(Candidate(f"{video.video_id}/{self.name}/{source}/next/{before_text}", source,
                                       tuple(pairs)))
        return found

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        events = candidate.events
        if events[0].kind is EventKind.QA:
            question = events[0].text
            answers = [Answer(e.answer, seen_from=e.start_s, end_s=e.end_s)  # type: ignore[arg-type]  # a qa event has an answer (validated)
                       for e in events]
        else:  # (before, after) pairs, flattened
            question = rng.choice(self.templates).format(before=events[0].text.rstrip("."))
            answers = [Answer(after.text, seen_from=before.start_s, end_s=after.end_s)
                       for before, after in zip(events[::2], events[1::2], strict=True)]
        return assemble(self.name, video, candidate.source, question, answers)
