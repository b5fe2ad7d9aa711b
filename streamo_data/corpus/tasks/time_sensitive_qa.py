"""Time-sensitive QA: a question whose answer changes as the video goes on, answered again each time
it changes. Two sources of such questions:

* the same question asked of several moments (qa events sharing a question, e.g. from the LLM QA
  annotator): answered at the end of each moment's evidence;
* "what is happening now?" over a sequence of actions or steps: answered a short evidence window
  after each one starts (``EVIDENCE_S``), i.e. as soon as the new answer is visible.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord
from streamo_data.corpus.tasks.base import (
    Answer,
    Candidate,
    Reject,
    assemble,
    by_source,
    by_text,
    drop_repeats,
    instruction,
)

EVIDENCE_S = 2.0
SEQUENTIAL = frozenset({EventKind.ACTION, EventKind.STEP, EventKind.CAPTION})


class TimeSensitiveQA:
    name: ClassVar[str] = "time_sensitive_qa"
    kinds: ClassVar[frozenset[EventKind]] = SEQUENTIAL | {EventKind.QA}
    templates: ClassVar[tuple[str, ...]] = (
        "What is happening in the video right now? Tell me again whenever it changes.",
        "Keep me updated: what is happening at the moment?",
        "What is going on in the video right now? Answer again each time that changes.",
        "Tell me what the current activity is, and tell me when it changes.",
        "As the video plays, what is happening now?",
        "What is happening at this moment? Please keep the answer current.",
        "Report the current action, and update it as soon as a new one starts.",
        "What is being done now? Tell me whenever the answer changes.",
        "Say what is happening, and speak up again each time it changes.",
        "What is the current activity? Update me as soon as it is a different one.",
    )
    step_templates: ClassVar[tuple[str, ...]] = (
        "Which step is being carried out now? Update me when it changes.",
        "What stage of the task are we at? Let me know each time it moves on.",
        "Which step of the procedure is this? Tell me when the next one starts.",
    )
    answers: ClassVar[tuple[str, ...]] = ("Now: {text}", "Right now: {text}", "Currently: {text}", "{text}")

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        """A question asked of several moments whose answers differ, or a sequence of two or more
        distinct actions; paraphrases of one moment count once and an answer is never repeated in a
        row (an unchanged answer is no update)."""
        found = []
        for source, group in by_source(events, frozenset({EventKind.QA})).items():
            for question, occurrences in by_text(group).items():
                changes = drop_repeats(occurrences, said=lambda e: e.answer or "")
                if len(changes) >= 2:
                    found.append(Candidate(f"{video.video_id}/{self.name}/{source}/{question}", source,
                                           tuple(changes)))
        for source, group in by_source(events, SEQUENTIAL, moments=True).items():
            changes = drop_repeats(group)
            if len(changes) >= 2:
                found.append(Candidate(f"{video.video_id}/{self.name}/{source}/now", source, tuple(changes)))
        return found

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        if candidate.events[0].kind is EventKind.QA:
            question = candidate.events[0].text
            answers = [Answer(e.answer, seen_from=e.start_s, end_s=e.end_s)  # type: ignore[arg-type]  # a qa event has an answer (validated)
                       for e in candidate.events]
        else:
            question = instruction(rng, self.templates, self.step_templates, candidate.events)
            answer = rng.choice(self.answers)
            answers = [Answer(answer.format(text=e.text.rstrip(".")) + ".", seen_from=e.start_s,
                              at=min(e.start_s + EVIDENCE_S, e.end_s)) for e in candidate.events]
        return assemble(self.name, video, candidate.source, question, answers)

