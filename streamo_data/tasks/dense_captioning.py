"""Dense event captioning in a stream: describe every event once it has finished, in one sample per
video, silent between events and standing by while one is in progress."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from streamo_data.schema import Event, EventKind, QuestionTurn, ResponseTurn, StreamingSample, VideoRecord
from streamo_data.tasks.base import (
    NO_FRAME_LEFT,
    Reject,
    answers_in_time,
    merge_same_frame,
    order_without_loss,
    validated,
)

CAPTIONABLE = frozenset({EventKind.CAPTION, EventKind.ACTION, EventKind.STEP})


class DenseCaptioning:
    name: ClassVar[str] = "dense_captioning"
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

    def build(self, video: VideoRecord, events: Sequence[Event], rng: random.Random) -> tuple[
            list[StreamingSample], list[Reject]]:
        rejects: list[Reject] = []
        responses = []
        for event in sorted((e for e in events if e.kind in CAPTIONABLE), key=lambda e: (e.end_s, e.start_s)):
            response = ResponseTurn(content=event.text, st_time=event.start_s, end_time=event.end_s)
            if not answers_in_time(response, video):
                rejects.append(Reject(video.video_id, self.name, NO_FRAME_LEFT))
                continue
            responses.append(response)
        if not responses:
            return [], rejects
        ordered = order_without_loss(merge_same_frame(responses, video.sample_fps), video.sample_fps)  # type: ignore[arg-type]
        question = QuestionTurn(content=rng.choice(self.templates), time=0.0)
        sources = sorted({e.source for e in events if e.kind in CAPTIONABLE})
        sample = validated(lambda: StreamingSample.create(
            task=self.name, source="+".join(sources), video_id=video.video_id, video_path=video.path,
            duration_s=video.duration_s, fps=video.sample_fps, num_frames=video.num_frames,
            questions=[question], responses=ordered), video, self.name, rejects)
        return ([sample] if sample else []), rejects
