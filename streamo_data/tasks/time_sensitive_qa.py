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

from streamo_data.schema import Event, EventKind, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.tasks.base import Candidate, Reject, assemble, by_source

EVIDENCE_S = 2.0
SEQUENTIAL = frozenset({EventKind.ACTION, EventKind.STEP, EventKind.CAPTION})


class TimeSensitiveQA:
    name: ClassVar[str] = "time_sensitive_qa"
    templates: ClassVar[tuple[str, ...]] = (
        "What is the person doing right now? Tell me again whenever it changes.",
        "Keep me updated: what is happening at the moment?",
        "Which step is being carried out now? Update me when it changes.",
        "What is going on in the video right now? Answer again each time that changes.",
        "Tell me what the current activity is, and tell me when it changes.",
        "As the video plays, what is happening now?",
        "What stage of the task are we at? Let me know each time it moves on.",
        "What is happening at this moment? Please keep the answer current.",
        "Report the current action, and update it as soon as a new one starts.",
        "What are they doing now? Tell me whenever the answer changes.",
    )
    answers: ClassVar[tuple[str, ...]] = ("Now: {text}", "Right now: {text}", "Currently: {text}", "{text}")

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        found = []
        for source, group in by_source(events, frozenset({EventKind.QA})).items():
            by_question: dict[str, list[Event]] = {}
            for event in group:
                by_question.setdefault(event.text, []).append(event)
            for occurrences in by_question.values():
                if len({e.answer for e in occurrences}) >= 2:
                    found.append(Candidate(f"{video.video_id}/{self.name}/{source}/{occurrences[0].event_id}", source,
                                           tuple(occurrences)))
        for source, group in by_source(events, SEQUENTIAL).items():
            if len(group) >= 2:
                found.append(Candidate(f"{video.video_id}/{self.name}/{source}/now", source, tuple(group)))
        return found

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        if candidate.events[0].kind is EventKind.QA:
            question = candidate.events[0].text
            responses = [ResponseTurn(content=e.answer, st_time=e.start_s, end_time=e.end_s)  # type: ignore[arg-type]
                         for e in candidate.events]
        else:
            question = rng.choice(self.templates)
            answer = rng.choice(self.answers)
            responses = [ResponseTurn(content=answer.format(text=e.text.rstrip(".")) + ".",
                                      time=min(e.start_s + EVIDENCE_S, e.end_s)) for e in candidate.events]
        return assemble(self.name, video, candidate.source, question, responses)
