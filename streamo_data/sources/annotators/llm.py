"""The LLM annotators: caption a segment, narrate a video, write time-sensitive and offline QA.

Each turns one *job* (a video, or a segment of one) into a chat request with the job's frames as
images, parses the reply as structured output against its pydantic model (checked against the
segment's times), shows a failed check to the model once, and turns a valid reply into Events that
carry their provenance. Everything that goes wrong becomes a reject with its reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from streamo_data.core.reasons import validation_messages
from streamo_data.core.schema import Event, EventKind, Provenance, VideoRecord
from streamo_data.sources.annotators.client import ClientSettings, LLMClient, RequestFailed, Usage, request_body
from streamo_data.sources.annotators.frames import (
    DEFAULT_SIZING,
    ImageSizing,
    frame_parts,
    segment_images,
    segment_times,
    sizing_params,
)
from streamo_data.sources.annotators.prompts import PromptTemplate
from streamo_data.sources.annotators.replies import REPLIES, CaptionReply, NarrationReply, QAReply, response_format
from streamo_data.video.backends import FrameBackend

KINDS = ("caption", "narration", "qa")
T = TypeVar("T")
CAPTIONED = frozenset({EventKind.CAPTION, EventKind.ACTION, EventKind.STEP, EventKind.HIGHLIGHT})


@dataclass(frozen=True)
class Job:
    video: VideoRecord
    start: float
    end: float
    text: str = ""  # the input of a job about an existing event (a caption to rewrite as a query)

    @property
    def duration(self) -> float:
        """The video's duration: only ok videos are annotated, and those know it."""
        return self.video.grid.duration_s

    @property
    def where(self) -> str:
        return f"{self.video.path} {self.start:g}s-{self.end:g}s"


def jobs_for(kind: str, video: VideoRecord, events: Sequence[Event], window_s: float) -> list[Job]:
    """Captioning asks about each distinct event segment of the video (fixed windows where it has
    none); narration and QA ask about the whole video."""
    duration = video.grid.duration_s
    if kind != "caption":
        return [Job(video, 0.0, duration)]
    spans = sorted({(e.start_s, e.end_s) for e in events if e.kind in CAPTIONED and e.end_s > e.start_s})
    if not spans:
        edges = [k * window_s for k in range(int(duration // window_s) + 1)] + [duration]
        spans = [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b - a >= 1.0]
    return [Job(video, round(a, 3), round(b, 3)) for a, b in spans]


class LLMAnnotator:
    """``client`` may be None for work that sends nothing (--dry-run estimates, Batch API requests)."""

    def __init__(self, kind: str, prompt: PromptTemplate, settings: ClientSettings, client: LLMClient | None,
                 video_dir: Path, backends: Sequence[FrameBackend], sizing: ImageSizing = DEFAULT_SIZING) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown annotator {kind!r}; known: {KINDS}")
        self.kind, self.prompt, self.settings, self.client = kind, prompt, settings, client
        self.video_dir, self.backends, self.sizing = video_dir, backends, sizing
        self.reply_model = REPLIES[prompt.output]
        # Jobs in progress (frames decoded and held, request pending) are bounded too, not only requests
        # in flight: otherwise every job of a large batch would decode and hold its images up front.
        self.job_slots = asyncio.Semaphore(2 * settings.concurrency)
        base = settings.base_url
        self.provenance = Provenance(
            model=settings.model, prompt_hash=prompt.sha256,
            params={"temperature": f"{prompt.temperature:g}", "max_tokens": str(prompt.max_tokens),
                    "frames": str(prompt.frames), "endpoint": urlparse(base).netloc if base else "api.openai.com",
                    "annotator": kind, **sizing_params(sizing)},
        )

    def request(self, job: Job, images: list[tuple[float, str]] | None) -> dict[str, Any]:
        """The request body for a job; with ``images=None`` a text-only stand-in of the same shape
        (for --dry-run estimates, which must not decode anything)."""
        system, user = self.prompt.render(start=f"{job.start:g}", end=f"{job.end:g}",
                                          duration=f"{job.video.duration_s:g}", num_frames=self.prompt.frames)
        frames = images or [(t, "") for t in segment_times(job.start, job.end, self.prompt.frames)]
        content = [{"type": "text", "text": user}, *frame_parts(frames, self.sizing.detail)]
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return request_body(self.settings.model, messages, self.prompt.temperature, self.prompt.max_tokens,
                            response_format(self.prompt.output))

    def images(self, job: Job) -> list[tuple[float, str]]:
        return segment_images(job.video, self.video_dir, job.start, job.end, self.prompt.frames, self.backends,
                              self.sizing)

    def parse(self, text: str, job: Job) -> CaptionReply | NarrationReply | QAReply:
        reply = parse_reply(self.reply_model, text, {"start": job.start, "end": job.end})
        return reply  # type: ignore[return-value]  # the reply model of one of KINDS: a caption, narration or qa reply

    def jobs(self, video: VideoRecord, events: Sequence[Event], window_s: float) -> list[Job]:
        return jobs_for(self.kind, video, events, window_s)

    def planned(self, job: Job) -> list[tuple[str, dict[str, Any]]]:
        """(stage, text-only stand-in body) for every request a job is expected to make: --dry-run."""
        return [(self.kind, self.request(job, None))]

    def first_requests(self, job: Job) -> list[dict[str, Any]]:
        """The request bodies a job sends first, frames included: what the Batch API can answer."""
        return [self.request(job, self.images(job))]

    async def annotate(self, job: Job, usage: Usage) -> tuple[list[Event], list[dict[str, str]]]:
        """Events for one job, and rejects (each with the job and the reason)."""
        async with self.job_slots:
            return await self._annotate(job, usage)

    async def _annotate(self, job: Job, usage: Usage) -> tuple[list[Event], list[dict[str, str]]]:
        assert self.client is not None, "annotate needs a client"
        try:  # decoding blocks: off the event loop, so replies keep being read meanwhile
            images = await asyncio.to_thread(self.images, job)
        except Exception as error:  # a decode failure is this job's problem, not the run's
            return [], [{"job": job.where, "reason": f"cannot read frames: {error}"}]
        body = self.request(job, images)
        try:
            reply = await ask_validated(self.client, body, lambda text: self.parse(text, job), usage)
        except (RequestFailed, InvalidReply) as error:
            return [], [{"job": job.where, "reason": reason_of(error)}]
        try:
            return self.events(reply, job), []
        except ValueError as error:  # a reply the checks let through that still makes no event: this job only
            message = "; ".join(validation_messages(error)) if isinstance(error, ValidationError) else str(error)
            return [], [{"job": job.where, "reason": f"the reply makes an invalid event: {message}"}]

    def events(self, reply: CaptionReply | NarrationReply | QAReply, job: Job) -> list[Event]:
        """Events with every time clipped into the video. The reply checks allow times a tolerance past
        the segment; clipping both ends of a span the same way keeps start <= end (a span just past
        the end becomes a moment at the end, not an impossible span)."""
        video, duration = job.video, job.duration

        def clip(time_s: float) -> float:
            return min(max(time_s, 0.0), duration)

        common = {"video_id": video.video_id, "duration_s": duration, "source": f"llm:{self.kind}",
                  "provenance": self.provenance}
        if isinstance(reply, CaptionReply):
            return [Event.create(start_s=clip(job.start), end_s=clip(job.end), text=reply.caption.strip(),
                                 kind=EventKind.CAPTION, **common)]
        if isinstance(reply, NarrationReply):  # a narration is said at a moment: start = end = its time
            said = {clip(item.time_s): item.text.strip() for item in reply.items}
            return [Event.create(start_s=t, end_s=t, text=text, kind=EventKind.NARRATION, **common)
                    for t, text in sorted(said.items())]
        return [Event.create(start_s=clip(item.start_s), end_s=clip(item.end_s),
                             text=item.question.strip(), answer=item.answer.strip(), kind=EventKind.QA,
                             **{**common, "source": f"llm:qa:{item.type}"})
                for item in reply.items]


class InvalidReply(ValueError):
    """A reply that failed its checks twice: the first time, and again after seeing why."""


def parse_reply(model: type[BaseModel], text: str, context: dict[str, Any]) -> BaseModel:
    """A reply checked against its model (with ``context``: the times it must lie in, the input it
    must not repeat); a ValueError saying why not, in words the model can act on."""
    if not text.strip():
        raise ValueError("the reply is empty")
    try:
        return model.model_validate_json(text, context=context)
    except ValidationError as error:
        raise ValueError("; ".join(validation_messages(error))) from None


async def ask_validated(client: LLMClient, body: dict[str, Any], parse: Callable[[str], T], usage: Usage) -> T:
    """The parsed reply to ``body``; an invalid reply is shown to the model with its error once, and
    a second invalid one raises InvalidReply. Both requests go through the cache, so a rerun makes
    the same decision without sending anything."""
    text = await client.complete(body, usage)
    try:
        return parse(text)
    except ValueError as first:
        retry = dict(body, messages=[*body["messages"], {"role": "assistant", "content": text},
                                     {"role": "user", "content": f"That reply is not valid: {first}. Reply"
                                      " again with JSON that follows the schema and fixes this."}])
        text = await client.complete(retry, usage)
        try:
            return parse(text)
        except ValueError as second:
            raise InvalidReply(f"invalid reply after one retry: {second}") from None


def reason_of(error: RequestFailed | InvalidReply) -> str:
    return f"request failed: {error}" if isinstance(error, RequestFailed) else str(error)


def dump_rejects(rejects: list[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)
