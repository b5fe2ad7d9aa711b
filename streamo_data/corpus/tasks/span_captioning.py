"""Captioning in a stream, shared by dense event captioning and action/step captioning: describe each
event once it has finished, in one sample per video and source, silent between events and standing
by while one is in progress. The two tasks differ in the events they read and the instructions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.core.schema import Event, EventKind, StreamingSample, VideoRecord
from streamo_data.corpus.tasks.base import Answer, Candidate, Reject, assemble, by_source, instruction


class SpanCaptioning:
    name: ClassVar[str]
    kinds: ClassVar[frozenset[EventKind]]
    templates: ClassVar[tuple[str, ...]]
    step_templates: ClassVar[tuple[str, ...]] = ()

    def candidates(self, video: VideoRecord, events: Sequence[Event]) -> list[Candidate]:
        """One sample per source, paraphrases of one moment captioned once."""
        return [Candidate(f"{video.video_id}/{self.name}/{source}", source, tuple(group))
                for source, group in by_source(events, self.kinds, moments=True).items()]

    def make(self, video: VideoRecord, candidate: Candidate, rng: random.Random) -> tuple[
            StreamingSample | None, list[Reject]]:
        answers = [Answer(e.text, seen_from=e.start_s, end_s=e.end_s) for e in candidate.events]
        question = instruction(rng, self.templates, self.step_templates, candidate.events)
        return assemble(self.name, video, candidate.source, question, answers)


class DenseCaptioning(SpanCaptioning):
    name: ClassVar[str] = "dense_captioning"
    kinds: ClassVar[frozenset[EventKind]] = frozenset({EventKind.CAPTION})
    templates: ClassVar[tuple[str, ...]] = (
        "Find all significant events in the video and describe them.",
        "Describe each event in the video as soon as it has finished.",
        "Watch the stream and narrate every distinct event once it completes.",
        "Tell me about each thing that happens in this video, when it is over.",
        "Caption every event in the video, one at a time, as it ends.",
        "As the video plays, describe each complete event you see.",
        "Give a short description of every event once you have seen all of it.",
        "List the events of this video as they conclude.",
        "Report each new event in the video after it finishes.",
        "Summarise every activity in the stream when it is done.",
    )


class ActionCaptioning(SpanCaptioning):
    name: ClassVar[str] = "action_captioning"
    kinds: ClassVar[frozenset[EventKind]] = frozenset({EventKind.ACTION, EventKind.STEP})
    templates: ClassVar[tuple[str, ...]] = (
        "Describe each action the person performs, once it is done.",
        "Watch and list the actions being carried out, one at a time.",
        "Name each action in the video when it finishes.",
        "Follow the activity and report every completed action.",
        "Which actions happen in this video? Tell me each one as it completes.",
        "Keep track of the actions and announce each one after it is finished.",
        "Caption every action you see, once it has been carried out.",
        "Tell me what was done each time an action is over.",
        "Describe every action in the video right after it ends.",
        "Each time someone finishes an action, tell me what it was.",
    )
    step_templates: ClassVar[tuple[str, ...]] = (
        "Report the steps of this how-to video as they are completed.",
        "Tell me every step of this procedure as soon as it is completed.",
        "As each step of the task ends, describe what was done.",
        "Follow the activity and report every completed step.",
        "Keep track of the steps and announce each one after it is finished.",
    )
