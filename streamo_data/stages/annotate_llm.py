"""Running an LLM annotator over a work directory: in-process, or on a Ray actor pool of clients.

Each video is one item. In-process, one async client serves every job with bounded concurrency;
on Ray, ``map_batches`` runs an actor pool, each actor one async client for its whole life (on an
event loop of its own), with its share of the concurrency and of the RPM/TPM limits (the limits are
per run, split evenly; every attempt takes from them). What can be checked before anything runs (the
options, the prompt template, the API key) is checked in the driver, so a bad one is one clear error
and not one traceback per actor. Every reply is cached
as it arrives (see :mod:`streamo_data.sources.annotators.cache`), so a rerun, or a resume after a crash,
sends no request that was already answered. New events are merged into ``events.parquet``; rejects,
token usage and cost go to ``annotate_<kind>_{rejects.jsonl,report.json}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamo_data.core.errors import UserError
from streamo_data.core.schema import METADATA_BACKEND, Event, VideoRecord, VideoStatus
from streamo_data.runtime.runner import Executor, ensure_ray, progress_bar
from streamo_data.sources.annotators.cache import RequestCache, request_key
from streamo_data.sources.annotators.client import (
    ClientSettings,
    LLMClient,
    RequestFailed,
    Usage,
    api_key_from_env,
    count_tokens,
)
from streamo_data.sources.annotators.frames import MAX_SIDE, ImageSizing, image_tokens
from streamo_data.sources.annotators.llm import LLMAnnotator, dump_rejects
from streamo_data.sources.annotators.prompts import PromptTemplate, load_prompt
from streamo_data.sources.annotators.staged import (
    PIPELINES,
    StagedAnnotator,
    StagedConfig,
    check_stage_prompts,
    pipeline_stages,
)
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, StoragePath, location
from streamo_data.store.tables import from_row, iter_rows, to_row, write_rows
from streamo_data.store.workdir import EVENTS, VIDEOS, video_root
from streamo_data.video.backends import available_backends

# Every annotator that runs through AnnotateOptions / run_llm_annotation, by name, with its stages (each
# stage one request kind with its own prompt file ``<stage>.md``). The single-request annotators are
# one stage named after themselves; the multi-stage pipelines are in streamo_data/sources/annotators/staged.py.
ANNOTATORS: dict[str, tuple[str, ...]] = {"caption": ("caption",), "narration": ("narration",), "qa": ("qa",),
                                          **PIPELINES}


class AnnotateOptions(BaseModel):
    """Checked when made (see ClientSettings): a window of 0 would never end, 0 actors would run nothing.
    The ``narration_*``, ``min_span_iou``, ``text_model`` and ``query_sources`` settings concern the
    multi-stage pipelines only (see :mod:`streamo_data.sources.annotators.staged`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: str
    settings: ClientSettings
    prompts: Path | None = None
    window_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    actors: int = Field(default=2, ge=1)
    cache_dir: StoragePath | None = None
    narration_window_s: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    narration_step_s: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    min_span_iou: float = Field(default=0.5, gt=0, le=1, allow_inf_nan=False)
    text_model: str | None = None
    query_sources: tuple[str, ...] = ()
    narration_windows_per_request: int = Field(default=1, ge=1, le=64)
    image_max_side: int = Field(default=MAX_SIDE, ge=16, le=4096)
    image_detail: Literal["low", "high", "auto"] = "low"

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ANNOTATORS:
            raise ValueError(f"unknown annotator {value!r}; known: {', '.join(ANNOTATORS)}")
        return value

    @field_validator("text_model")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a model name is needed (or leave it out to use --model)")
        return value.strip() if value is not None else None

    @property
    def sizing(self) -> ImageSizing:
        return ImageSizing(max_side=self.image_max_side, detail=self.image_detail)

    @property
    def stages(self) -> tuple[str, ...]:
        """Every request kind it makes, each with its prompt file ``<stage>.md``."""
        if self.kind in PIPELINES:
            return pipeline_stages(self.kind, self.narration_windows_per_request)
        return ANNOTATORS[self.kind]

    @property
    def staged(self) -> StagedConfig:
        return StagedConfig(caption_window_s=self.window_s, narration_window_s=self.narration_window_s,
                            narration_step_s=self.narration_step_s, min_span_iou=self.min_span_iou,
                            text_model=self.text_model, query_sources=self.query_sources,
                            narration_windows_per_request=self.narration_windows_per_request, sizing=self.sizing)


STAGE_COUNTS = ("requests", "images", "image_tokens", "text_tokens", "completion_tokens", "tokens", "cost")


@dataclass
class AnnotateReport:
    kind: str
    videos: int = 0
    jobs: int = 0
    events: int = 0
    usage: Usage = field(default_factory=Usage)
    rejects: Counter[str] = field(default_factory=Counter)
    estimated_tokens: int = 0
    estimated_cost: float = 0.0
    first_reject: str = ""
    estimated_requests: int = 0
    # --dry-run, per stage (a stage is one request kind): the STAGE_COUNTS
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    # --dry-run of a narration over several windows a request: the same, asked one window a request
    paper_stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def nothing_answered(self) -> bool:
        """Requests were made and every one failed: the endpoint is down, unreachable, or refuses us.
        The run could not do its job, which a caller must hear as a failure, not as an empty success."""
        return self.usage.failed > 0 and self.usage.sent == 0 and self.usage.cached == 0

    def as_dict(self, settings: ClientSettings) -> dict[str, Any]:
        return {"annotator": self.kind, "model": settings.model, "videos": self.videos, "jobs": self.jobs,
                "events": self.events, "usage": self.usage.as_dict(), "cost": round(self.usage.cost(settings), 6),
                "rejects": dict(self.rejects)}


Annotator = LLMAnnotator | StagedAnnotator


def load_prompts(options: AnnotateOptions) -> dict[str, PromptTemplate]:
    """Every stage's template, checked (PromptError naming the file)."""
    return {stage: load_prompt(stage, options.prompts) for stage in options.stages}


def _annotator(options: AnnotateOptions, client: LLMClient | None, video_dir: Path,
               prompts: dict[str, PromptTemplate] | None = None) -> Annotator:
    prompts = prompts or load_prompts(options)
    if options.kind in PIPELINES:
        return StagedAnnotator(options.kind, prompts, options.settings, client, video_dir, available_backends(),
                               options.staged)
    return LLMAnnotator(options.kind, prompts[options.kind], options.settings, client, video_dir,
                        available_backends(), options.sizing)


def preflight(options: AnnotateOptions) -> dict[str, PromptTemplate]:
    """Everything a run needs that can be wrong before it starts: the prompt templates (PromptError) and
    the API key (MissingApiKey); both UserErrors, checked once, in the driver, before any actor exists."""
    prompts = load_prompts(options)
    if options.kind in PIPELINES:
        check_stage_prompts(options.kind, prompts, options.narration_windows_per_request)
    api_key_from_env(options.settings)
    return prompts


def request_cache(options: AnnotateOptions, work_dir: AnyPath) -> RequestCache:
    return RequestCache(options.cache_dir or work_dir / "llm_cache")


def _video_items(work_dir: AnyPath, options: AnnotateOptions) -> tuple[list[dict[str, Any]], int]:
    """One item per video that has a file to look at; how many videos had none (metadata only)."""
    events: dict[str, list[dict[str, Any]]] = {}
    if (work_dir / EVENTS).exists():
        for row in iter_rows(work_dir / EVENTS):
            events.setdefault(row["video_id"], []).append(row)
    items, skipped = [], 0
    for row in iter_rows(work_dir / VIDEOS):
        if row["status"] != VideoStatus.OK:
            continue
        if row["backend"] == METADATA_BACKEND:
            skipped += 1
            continue
        items.append({"video": row, "events": events.get(row["video_id"], [])})
    return items, skipped


async def annotate_videos(annotator: Annotator, items: list[dict[str, Any]], window_s: float,
                          on_done: Any = None) -> list[dict[str, Any]]:
    """Every job of every item concurrently (the client bounds what is in flight); one result per item."""

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        video = from_row(VideoRecord, item["video"])
        events = [from_row(Event, row) for row in item["events"]]
        usage = Usage()
        new_events: list[dict[str, Any]] = []
        rejects: list[dict[str, str]] = []
        jobs = annotator.jobs(video, events, window_s)
        for made, problems in await asyncio.gather(*(annotator.annotate(job, usage) for job in jobs)):
            new_events.extend(to_row(e) for e in made)
            rejects.extend(problems)
        result = {"video_id": video.video_id, "jobs": len(jobs), "events": new_events, "rejects": rejects,
                  "usage": usage.as_dict()}
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


class AnnotatorActor:
    """A Ray Data actor: one async client for the actor's whole life, results back as JSON strings.

    The client (and with it the actor's share of the RPM/TPM budget) outlives the batches: a client
    per batch would start every batch with a fresh budget. So the actor keeps one event loop of its
    own, runs each batch on it, and makes the client on it at the first batch."""

    def __init__(self, options: dict[str, Any], prompts: dict[str, PromptTemplate], work_dir: str,
                 video_dir: str) -> None:
        self.options = AnnotateOptions.model_validate(options)
        self.prompts, self.work_dir, self.video_dir = prompts, location(work_dir), Path(video_dir)
        self.loop = asyncio.new_event_loop()
        self.turn = threading.Lock()  # one batch at a time on the loop, whichever thread Ray calls from
        self.annotator: Annotator | None = None

    async def _run(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.annotator is None:
            client = LLMClient(self.options.settings, request_cache(self.options, self.work_dir))
            self.annotator = _annotator(self.options, client, self.video_dir, self.prompts)
        return await annotate_videos(self.annotator, items, self.options.window_s)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [json.loads(text) for text in batch["json"]]
        with self.turn:
            results = self.loop.run_until_complete(self._run(items))
        return {"json": np.array([json.dumps(r) for r in results], dtype=object)}


def run_llm_annotation(work_dir: AnyPath, options: AnnotateOptions, executor: Executor) -> AnnotateReport:
    prompts = preflight(options)
    items, skipped = _video_items(work_dir, options)
    video_dir = video_root(work_dir)
    report = AnnotateReport(kind=options.kind, videos=len(items))
    if skipped:
        report.rejects["video file not available (known from metadata only): ingest the videos"] += skipped
    results: list[dict[str, Any]] = []

    with progress_bar() as progress:
        bar = progress.add_task(f"annotate {options.kind}", total=len(items))

        def done(result: dict[str, Any]) -> None:
            report.usage.add(Usage(**result["usage"]))
            progress.update(bar, advance=1, description=f"annotate {options.kind} (sent {report.usage.sent},"
                            f" cached {report.usage.cached}, failed {report.usage.failed})")

        if executor.kind == "local" or not items:
            async def run() -> list[dict[str, Any]]:
                client = LLMClient(options.settings, request_cache(options, work_dir))
                try:
                    return await annotate_videos(_annotator(options, client, video_dir, prompts), items,
                                                 options.window_s, done)
                finally:
                    await client.close()

            results = asyncio.run(run())
        else:
            import ray.data

            ensure_ray(executor)
            actors = max(1, min(options.actors, len(items)))
            share = options.model_copy(update={"settings": options.settings.model_copy(update={
                "concurrency": math.ceil(options.settings.concurrency / actors),
                "requests_per_minute": _split(options.settings.requests_per_minute, actors),
                "tokens_per_minute": _split(options.settings.tokens_per_minute, actors)})})
            dataset = ray.data.from_items([{"json": json.dumps(i)} for i in items],
                                          override_num_blocks=min(len(items), 4 * actors))
            mapped = dataset.map_batches(
                AnnotatorActor, fn_constructor_kwargs={"options": share.model_dump(mode="json"), "prompts": prompts,
                                                       "work_dir": str(work_dir), "video_dir": str(video_dir)},
                concurrency=actors, batch_size=max(1, math.ceil(len(items) / (4 * actors))), batch_format="numpy")
            for row in mapped.iter_rows():
                result = json.loads(row["json"])
                done(result)
                results.append(result)

    new_events: list[dict[str, Any]] = []
    all_rejects: list[dict[str, str]] = []
    for result in sorted(results, key=lambda r: r["video_id"]):
        report.jobs += result["jobs"]
        new_events.extend(result["events"])
        all_rejects.extend(result["rejects"])
    report.rejects.update(_reason(r["reason"]) for r in all_rejects)
    report.first_reject = all_rejects[0]["reason"] if all_rejects else ""
    report.events = len(new_events)
    _merge_events(work_dir, new_events)
    write_text_atomic(work_dir / f"annotate_{options.kind}_rejects.jsonl", dump_rejects(all_rejects))
    write_text_atomic(work_dir / f"annotate_{options.kind}_report.json",
                      json.dumps(report.as_dict(options.settings), indent=2))
    return report


def _split(limit: float | None, parts: int) -> float | None:
    return limit / parts if limit else None


def _reason(reason: str) -> str:
    from streamo_data.core.reasons import reason_key

    return reason_key(reason)


def _merge_events(work_dir: AnyPath, new_events: list[dict[str, Any]]) -> None:
    """Existing events plus the new ones, each event once (ids are content hashes), sorted by video."""
    rows = {row["event_id"]: row for row in iter_rows(work_dir / EVENTS)} if (work_dir / EVENTS).exists() else {}
    for row in new_events:
        rows.setdefault(row["event_id"], row)
    ordered = sorted(rows.values(), key=lambda r: (r["video_id"], r["start_s"], r["end_s"], r["event_id"]))
    write_rows(work_dir / EVENTS, Event, ordered)


def estimate(work_dir: AnyPath, options: AnnotateOptions) -> AnnotateReport:
    """--dry-run: how many requests and tokens a run would cost, without decoding or sending anything.
    Requests already in the cache cannot be told apart without the frames, so this is an upper bound.
    Per stage it counts requests, images, image tokens (by each video's size as sent and the detail) and
    text tokens; a narration over several windows a request is also counted as the paper asks it, one
    window a request (``report.paper_stages``), so the two read side by side."""
    items, skipped = _video_items(work_dir, options)
    report = AnnotateReport(kind=options.kind, videos=len(items))
    if skipped:
        report.rejects["video file not available (known from metadata only): ingest the videos"] += skipped
    videos = [(from_row(VideoRecord, item["video"]), [from_row(Event, row) for row in item["events"]])
              for item in items]
    report.stages = _tally(options, videos, video_root(work_dir), report)
    if options.kind == "narration_pipeline" and options.narration_windows_per_request > 1:
        paper = options.model_copy(update={"narration_windows_per_request": 1})
        report.paper_stages = _tally(paper, videos, video_root(work_dir), AnnotateReport(kind=options.kind))
    return report


def _tally(options: AnnotateOptions, videos: list[tuple[VideoRecord, list[Event]]], video_dir: Path,
           report: AnnotateReport) -> dict[str, dict[str, float]]:
    """Per stage: requests, images, image and text tokens, completion budget, tokens in all and cost; the
    report's totals and job count are added to as well."""
    annotator = _annotator(options, None, video_dir)
    settings, sizing = options.settings, options.sizing
    stages: dict[str, dict[str, float]] = {}
    for video, events in videos:
        per_image = image_tokens(*sizing.sent_size(video.width, video.height), sizing.detail)
        for job in annotator.jobs(video, events, options.window_s):
            report.jobs += 1
            for stage, body in annotator.planned(job):
                count = count_tokens(body, per_image)
                cost = ((count.total - count.completion) * settings.price_input_per_million
                        + count.completion * settings.price_output_per_million) / 1e6
                tally = stages.setdefault(stage, dict.fromkeys(STAGE_COUNTS, 0.0))
                for name, value in (("requests", 1), ("images", count.images), ("image_tokens", count.image),
                                    ("text_tokens", count.text), ("completion_tokens", count.completion),
                                    ("tokens", count.total), ("cost", cost)):
                    tally[name] += value
                report.estimated_requests += 1
                report.estimated_tokens += count.total
                report.estimated_cost += cost
    return stages


def run_batch_pass(work_dir: AnyPath, options: AnnotateOptions, poll_s: float = 2.0,
                   on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, int]:
    """The Batch API pass: every request not yet cached goes into one batch, whose replies fill the
    cache; the online pass that follows then validates them (and retries invalid ones) as usual."""
    from streamo_data.sources.annotators.batch import run_batch

    pending = pending_requests(work_dir, options)
    try:
        return asyncio.run(run_batch(options.settings, request_cache(options, work_dir), pending, poll_s=poll_s,
                                     on_poll=on_poll))
    except RequestFailed as error:  # the whole batch, not one request: the run cannot go on
        raise UserError(f"batch: {error}") from error


def pending_requests(work_dir: AnyPath, options: AnnotateOptions) -> list[tuple[str, dict[str, Any]]]:
    """Request bodies not yet in the cache, with their keys; for the Batch API. Decodes frames. For a
    multi-stage pipeline, the first stage's requests only: later stages ask about earlier replies."""
    items, _ = _video_items(work_dir, options)
    annotator = _annotator(options, None, video_root(work_dir))
    cache = request_cache(options, work_dir)
    pending = []
    for item in items:
        video = from_row(VideoRecord, item["video"])
        events = [from_row(Event, row) for row in item["events"]]
        for job in annotator.jobs(video, events, options.window_s):
            try:
                bodies = annotator.first_requests(job)
            except Exception:  # noqa: BLE001 - the online pass reports unreadable frames with their reason
                continue
            for body in bodies:
                key = request_key(body, options.settings.endpoint)
                if cache.get(key) is None:
                    pending.append((key, body))
    return pending
