"""The paper's multi-stage generation pipelines (Streamo, section 4) as annotators.

Each pipeline is a chain of *stages*; a stage is one kind of request with its own prompt file
(``templates/<stage>.md``) and its own reply model (``<stage>_reply`` in :mod:`replies`), so its
requests have their own schema name and prompt, hence their own cache keys: a rerun or a resume after
a kill answers every stage from the cache. A reply that fails its checks is shown its error once, then
the job is rejected with the reason (see :func:`llm.ask_validated`).

* ``narration_pipeline``: a VLM says what changes in each short window (2 s, stepping 1 s); a text
  LLM drops repeats, merges steps, shortens each line to about five words, or rejects the whole
  video as a negative sample (counted, with its reason). With ``narration_windows_per_request`` > 1
  the first stage is ``narration_windows``: consecutive windows in one request over the frames they
  share (each frame sent once in it), each window still answered on its own (see :func:`pipeline_stages`).
* ``caption_verified`` / ``action_verified``: a VLM captions a segment (event- or action-oriented
  prompt), then is asked back for the span of its own caption over the whole video; the caption is
  kept only when the two spans agree (temporal IoU >= ``min_span_iou``, 0.5 by default), otherwise
  dropped and counted with both spans.
* ``grounding_queries``: a text LLM rewrites each existing caption into a search query; the query
  keeps the caption's span.
* ``ts_qa_changes``: a VLM finds the moments where the answer to a question changes and writes one
  question with at least two timed answers (checked: inside the video, increasing, each different).

Every event carries per-stage provenance: each stage's model, prompt hash and sampling parameters,
and what the verification measured.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from streamo_data.core.schema import Event, EventKind, Provenance, VideoRecord
from streamo_data.sources.annotators.client import ClientSettings, LLMClient, RequestFailed, Usage, request_body
from streamo_data.sources.annotators.frames import (
    ImageSizing,
    frame_parts,
    images_at,
    segment_images,
    segment_times,
    sizing_params,
)
from streamo_data.sources.annotators.llm import (
    CAPTIONED,
    InvalidReply,
    Job,
    ask_validated,
    jobs_for,
    parse_reply,
    reason_of,
)
from streamo_data.sources.annotators.prompts import PromptError, PromptTemplate
from streamo_data.sources.annotators.replies import (
    REPLIES,
    ChangeQAReply,
    GroundReply,
    NarrationRewriteReply,
    QueryReply,
    SegmentCaptionReply,
    WindowChangeReply,
    response_format,
)
from streamo_data.video.backends import FrameBackend

PIPELINES: dict[str, tuple[str, ...]] = {
    "narration_pipeline": ("narration_window", "narration_rewrite"),
    "caption_verified": ("caption_segment", "caption_ground"),
    "action_verified": ("action_segment", "action_ground"),
    "grounding_queries": ("grounding_query",),
    "ts_qa_changes": ("ts_qa_changes",),
}
# With several narration windows per request, the first stage is this one (see pipeline_stages).
BATCHED_NARRATION = "narration_windows"
TEXT_STAGES = frozenset({"narration_rewrite", "grounding_query"})  # no frames; run on ``text_model``
NO_CHANGE = "no change"
QUERYABLE = frozenset({EventKind.CAPTION, EventKind.ACTION, EventKind.STEP})


def pipeline_stages(kind: str, windows_per_request: int = 1) -> tuple[str, ...]:
    """A pipeline's stages. Narration over several windows a request asks ``narration_windows`` (one
    request answers consecutive windows over the frames they share) in place of ``narration_window``
    (the paper's one window a request); the rest of the chain is the same."""
    stages = PIPELINES[kind]
    if kind == "narration_pipeline" and windows_per_request > 1:
        return (BATCHED_NARRATION, *stages[1:])
    return stages


def made_by(event: Event, stage: str) -> bool:
    """Whether a stage of ours generated ``event``, by its provenance (its source may have been renamed,
    e.g. to ``<source>:<annotator>`` in a mixture)."""
    return event.provenance is not None and any(key.startswith(f"{stage}.") for key in event.provenance.params)


@dataclass(frozen=True)
class StagedConfig:
    """The pipelines' own settings (the rest is the client's)."""

    caption_window_s: float = 10.0  # segments for videos without events, as the caption annotator
    narration_window_s: float = 2.0
    narration_step_s: float = 1.0
    min_span_iou: float = 0.5
    text_model: str | None = None
    query_sources: tuple[str, ...] = ()  # source prefixes of the captions to rewrite; () = every caption
    narration_windows_per_request: int = 1  # 1: the paper's method; more: consecutive windows share frames
    sizing: ImageSizing = ImageSizing()


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    overlap = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return overlap / union if union > 0 else 0.0


def narration_windows(duration: float, window_s: float, step_s: float) -> list[tuple[float, float]]:
    """Windows of ``window_s`` every ``step_s`` that fit in the video (one window for a shorter video),
    plus one ending at the video's end when the steps leave its tail unseen: a change there would
    otherwise never be narrated."""
    if duration <= window_s:
        return [(0.0, round(duration, 3))]
    count = int((duration - window_s) / step_s + 1e-9) + 1
    windows = [(round(k * step_s, 3), round(k * step_s + window_s, 3)) for k in range(count)]
    if windows[-1][1] < duration - 1e-3:
        windows.append((round(duration - window_s, 3), round(duration, 3)))
    return windows


@dataclass(frozen=True)
class WindowRequest:
    """One first-stage narration request: its stage, the windows it answers, the span they cover, the
    frame times it sends (None: the window's own, as the paper samples them) and the window list."""

    stage: str
    windows: tuple[tuple[float, float], ...]
    span: tuple[float, float]
    times: tuple[float, ...] | None
    text: str


class StageFailed(Exception):
    """A job stopped by one of its stages; the message is the reject reason."""


class StagedAnnotator:
    """Runs one pipeline's stages for each job; same interface as :class:`llm.LLMAnnotator`."""

    def __init__(self, kind: str, prompts: dict[str, PromptTemplate], settings: ClientSettings,
                 client: LLMClient | None, video_dir: Path, backends: Sequence[FrameBackend],
                 config: StagedConfig) -> None:
        if kind not in PIPELINES:
            raise ValueError(f"unknown pipeline {kind!r}; known: {', '.join(PIPELINES)}")
        self.stages = pipeline_stages(kind, config.narration_windows_per_request)
        check_stage_prompts(kind, prompts, config.narration_windows_per_request)
        self.kind, self.prompts, self.settings, self.client = kind, prompts, settings, client
        self.video_dir, self.backends, self.config = video_dir, backends, config
        # Decoded frames held at once are bounded, as in LLMAnnotator: jobs in progress, and within a job the
        # stage requests (a narration fans out into one request per window: hundreds for a long video).
        self.job_slots = asyncio.Semaphore(2 * settings.concurrency)
        self.ask_slots = asyncio.Semaphore(2 * settings.concurrency)
        base = settings.base_url
        params = {"annotator": kind, "endpoint": urlparse(base).netloc if base else "api.openai.com"}
        for stage in self.stages:
            prompt = prompts[stage]
            params.update({f"{stage}.model": self.model_of(stage), f"{stage}.prompt_hash": prompt.sha256,
                           f"{stage}.temperature": f"{prompt.temperature:g}",
                           f"{stage}.max_tokens": str(prompt.max_tokens)})
            if stage not in TEXT_STAGES:
                params[f"{stage}.frames"] = str(prompt.frames)
        if kind == "narration_pipeline":
            params.update(window_s=f"{config.narration_window_s:g}", step_s=f"{config.narration_step_s:g}")
            if config.narration_windows_per_request > 1:
                params["windows_per_request"] = str(config.narration_windows_per_request)
        params.update(sizing_params(config.sizing))
        if kind in ("caption_verified", "action_verified"):
            params["min_span_iou"] = f"{config.min_span_iou:g}"
        chain = "".join(prompts[stage].sha256 for stage in self.stages)
        self.params = params
        self.prompt_hash = hashlib.sha256(chain.encode("ascii")).hexdigest()

    def model_of(self, stage: str) -> str:
        return (self.config.text_model or self.settings.model) if stage in TEXT_STAGES else self.settings.model

    def provenance(self, **measured: str) -> Provenance:
        return Provenance(model=self.settings.model, prompt_hash=self.prompt_hash, params={**self.params, **measured})

    # ---- jobs and requests --------------------------------------------------------------------------------
    def jobs(self, video: VideoRecord, events: Sequence[Event], window_s: float) -> list[Job]:
        """Segments for the caption pipelines; one job per existing caption for queries; else the video."""
        duration = video.grid.duration_s
        if self.kind in ("caption_verified", "action_verified"):
            return jobs_for("caption", video, [e for e in events if e.kind in CAPTIONED
                                               and not made_by(e, "grounding_query")], window_s)
        if self.kind == "grounding_queries":
            prefixes = self.config.query_sources
            seen = {(round(e.start_s, 3), round(e.end_s, 3), e.text.strip()) for e in events
                    if e.kind in QUERYABLE and e.end_s > e.start_s
                    and (not prefixes or e.source.startswith(prefixes))}
            return [Job(video, start, end, text) for start, end, text in sorted(seen)]
        return [Job(video, 0.0, duration)]

    def body(self, stage: str, job: Job, images: list[tuple[float, str]] | None, span: tuple[float, float],
             text: str = "", times: Sequence[float] | None = None) -> dict[str, Any]:
        """A stage's request: its prompt filled in, then the frames as images: those of ``span``, or at
        ``times`` when given (``images=None``: text-only stand-ins of the same shape, for --dry-run).
        Text stages send no images."""
        prompt = self.prompts[stage]
        frames: list[tuple[float, str]] = []
        if stage not in TEXT_STAGES:
            frames = images or [(t, "") for t in (times or segment_times(span[0], span[1], prompt.frames))]
        system, user = prompt.render(start=f"{span[0]:g}", end=f"{span[1]:g}", duration=f"{job.video.duration_s:g}",
                                     num_frames=len(frames) or prompt.frames, text=text)
        content = [{"type": "text", "text": user}, *frame_parts(frames, self.config.sizing.detail)]
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return request_body(self.model_of(stage), messages, prompt.temperature, prompt.max_tokens,
                            response_format(prompt.output))

    def images(self, stage: str, job: Job, span: tuple[float, float],
               times: Sequence[float] | None = None) -> list[tuple[float, str]]:
        if times is not None:
            return images_at(job.video, self.video_dir, times, self.backends, self.config.sizing)
        return segment_images(job.video, self.video_dir, span[0], span[1], self.prompts[stage].frames, self.backends,
                              self.config.sizing)

    def _whole(self, job: Job) -> tuple[float, float]:
        return 0.0, job.duration

    def planned(self, job: Job) -> list[tuple[str, dict[str, Any]]]:
        """(stage, stand-in body) for each request the job will make at most (retries aside): --dry-run.
        Later stages' inputs are not known before the earlier ones answer; a typical-length stand-in
        takes their place."""
        first, *rest = self.stages
        if self.kind == "narration_pipeline":
            windows = self._windows(job)
            lines = "\n".join(f"{a:g}s-{b:g}s: {'x' * 60}" for a, b in windows)
            return [(first, body) for body in self._window_bodies(job, None)] + [
                (rest[0], self.body(rest[0], job, None, self._whole(job), lines))]
        span = (job.start, job.end)
        if self.kind == "grounding_queries":
            return [(first, self.body(first, job, None, span, job.text))]
        if self.kind == "ts_qa_changes":
            return [(first, self.body(first, job, None, span))]
        return [(first, self.body(first, job, None, span)), (rest[0], self.body(rest[0], job, None, self._whole(job),
                                                                                 "x" * 100))]

    def first_requests(self, job: Job) -> list[dict[str, Any]]:
        """The first stage's requests with their frames: the ones the Batch API can answer up front."""
        first = self.stages[0]
        if self.kind == "narration_pipeline":
            return self._window_bodies(job, lambda stage, span, times: self.images(stage, job, span, times))
        if self.kind == "grounding_queries":
            return [self.body(first, job, None, (job.start, job.end), job.text)]
        return [self.body(first, job, self.images(first, job, (job.start, job.end)), (job.start, job.end))]

    def _windows(self, job: Job) -> list[tuple[float, float]]:
        return narration_windows(job.duration, self.config.narration_window_s,
                                 self.config.narration_step_s)

    def window_requests(self, job: Job) -> list[WindowRequest]:
        """The narration's first-stage requests: one per window (the paper's), or one per run of
        ``narration_windows_per_request`` consecutive windows, over the union of their frames (windows 2 s
        long stepping 1 s share a frame with each neighbour, so N windows need N + 1 frames, not 2N)."""
        windows, per = self._windows(job), self.config.narration_windows_per_request
        if per <= 1:
            return [WindowRequest(PIPELINES[self.kind][0], (w,), w, None, "") for w in windows]
        frames = self.prompts[BATCHED_NARRATION].frames
        requests = []
        for k in range(0, len(windows), per):
            group = tuple(windows[k:k + per])
            times_of = [segment_times(a, b, frames) for a, b in group]
            times = tuple(sorted({t for ts in times_of for t in ts}))
            lines = "\n".join(f"{a:g}s-{b:g}s: frames at {', '.join(f'{t:g}s' for t in ts)}"
                              for (a, b), ts in zip(group, times_of, strict=True))
            requests.append(WindowRequest(BATCHED_NARRATION, group, (group[0][0], group[-1][1]), times, lines))
        return requests

    def _window_bodies(self, job: Job, images: Any) -> list[dict[str, Any]]:
        """Bodies of :meth:`window_requests`; ``images(stage, span, times)`` decodes, None: stand-ins."""
        return [self.body(r.stage, job, images(r.stage, r.span, r.times) if images else None, r.span, r.text,
                          r.times) for r in self.window_requests(job)]

    # ---- running --------------------------------------------------------------------------------------------
    async def ask(self, stage: str, job: Job, span: tuple[float, float], usage: Usage, text: str = "",
                  context: dict[str, Any] | None = None, times: Sequence[float] | None = None) -> Any:
        """One stage's validated reply, or StageFailed naming the stage and why."""
        assert self.client is not None, "annotate needs a client"
        async with self.ask_slots:
            try:
                images = (None if stage in TEXT_STAGES
                          else await asyncio.to_thread(self.images, stage, job, span, times))
            except Exception as error:  # noqa: BLE001 - a decode failure is this job's problem, not the run's
                raise StageFailed(f"{stage}: cannot read frames: {error}") from None
            body = self.body(stage, job, images, span, text, times)
            model = REPLIES[self.prompts[stage].output]
            limits = {"start": 0.0, "end": job.duration}
            try:
                return await ask_validated(self.client, body, lambda reply: parse_reply(
                    model, reply, {**limits, **(context or {})}), usage)
            except (RequestFailed, InvalidReply) as error:
                raise StageFailed(f"{stage}: {reason_of(error)}") from None

    async def annotate(self, job: Job, usage: Usage) -> tuple[list[Event], list[dict[str, str]]]:
        async with self.job_slots:
            try:
                return await self._run(job, usage), []
            except StageFailed as error:
                return [], [{"job": job.where, "reason": str(error)}]
            except ValueError as error:  # a validated reply that still makes no event: this job only
                return [], [{"job": job.where, "reason": f"the reply makes an invalid event: {error}"}]

    async def _run(self, job: Job, usage: Usage) -> list[Event]:
        if self.kind == "narration_pipeline":
            return await self._narration(job, usage)
        if self.kind == "grounding_queries":
            reply: QueryReply = await self.ask("grounding_query", job, (job.start, job.end), usage, job.text,
                                               {"caption": job.text})
            return [self._event(job, job.start, job.end, reply.query.strip(), EventKind.HIGHLIGHT,
                                caption=job.text)]
        if self.kind == "ts_qa_changes":
            qa: ChangeQAReply = await self.ask("ts_qa_changes", job, (job.start, job.end), usage)
            return [self._event(job, item.time_s, item.time_s, qa.question.strip(), EventKind.QA,
                                answer=item.answer.strip()) for item in qa.answers]
        return await self._verified(job, usage)

    async def _narration(self, job: Job, usage: Usage) -> list[Event]:
        """Every window is needed: a narration with a hole would teach silence where something changed,
        so one window that fails rejects the video (with that window's reason)."""
        requests = self.window_requests(job)
        replies = await asyncio.gather(*(self.ask(r.stage, job, r.span, usage, r.text,
                                                  {"windows": [list(w) for w in r.windows]}, r.times)
                                         for r in requests), return_exceptions=True)
        changes: list[tuple[tuple[float, float], str]] = []
        for request, reply in zip(requests, replies, strict=True):
            if isinstance(reply, BaseException):
                if isinstance(reply, StageFailed):
                    raise StageFailed(f"{reply} (window {request.span[0]:g}s-{request.span[1]:g}s)")
                raise reply
            said = [reply.change] if isinstance(reply, WindowChangeReply) else [w.change for w in reply.windows]
            changes.extend(zip(request.windows, (text.strip() for text in said), strict=True))
        notes = [f"{a:g}s-{b:g}s: {change}" for (a, b), change in changes]
        changed = [change for _, change in changes if change.lower().rstrip(".") != NO_CHANGE]
        if not changed:
            raise StageFailed("negative sample: no window shows a change")
        rewrite: NarrationRewriteReply = await self.ask("narration_rewrite", job, self._whole(job), usage,
                                                        "\n".join(notes))
        if rewrite.negative:
            raise StageFailed(f"negative sample: {rewrite.reason.strip()}")
        return [self._event(job, item.time_s, item.time_s, item.text.strip(), EventKind.NARRATION)
                for item in rewrite.items]

    async def _verified(self, job: Job, usage: Usage) -> list[Event]:
        action = self.kind == "action_verified"
        caption_stage, ground_stage = PIPELINES[self.kind]
        span = (job.start, job.end)
        caption: SegmentCaptionReply = await self.ask(caption_stage, job, span, usage)
        text = caption.caption.strip()
        grounded: GroundReply = await self.ask(ground_stage, job, self._whole(job), usage, text)
        duration = job.duration
        found = (min(max(grounded.start_s, 0.0), duration), min(max(grounded.end_s, 0.0), duration))
        iou = temporal_iou(span, found)
        if iou < self.config.min_span_iou:
            raise StageFailed(f"spans disagree: captioned {span[0]:g}s-{span[1]:g}s, grounded back to"
                              f" {found[0]:g}s-{found[1]:g}s (temporal IoU {iou:.2f} <"
                              f" {self.config.min_span_iou:g})")
        return [self._event(job, job.start, job.end, text, EventKind.ACTION if action else EventKind.CAPTION,
                            span_iou=f"{iou:.3f}", grounded_span=f"{found[0]:g}-{found[1]:g}")]

    def _event(self, job: Job, start: float, end: float, text: str, kind: EventKind, answer: str | None = None,
               **measured: str) -> Event:
        """Times clipped into the video (replies may be a tolerance past its end)."""
        duration = job.duration

        def clip(time_s: float) -> float:
            return min(max(time_s, 0.0), duration)

        return Event.create(video_id=job.video.video_id, duration_s=duration, start_s=clip(start), end_s=clip(end),
                            text=text, kind=kind, source=f"llm:{self.kind}", answer=answer,
                            provenance=self.provenance(**measured))


def check_stage_prompts(kind: str, prompts: dict[str, PromptTemplate], windows_per_request: int = 1) -> None:
    """Each stage's template answers with that stage's reply model: an edited prompt that names another
    would parse replies against the wrong checks."""
    for stage in pipeline_stages(kind, windows_per_request):
        if stage not in prompts:
            raise PromptError(f"pipeline {kind} needs the prompt template {stage}.md")
        if prompts[stage].output != f"{stage}_reply":
            raise PromptError(f"{stage}.md: output must be {stage}_reply (the stage's reply model), not"
                              f" {prompts[stage].output}")
