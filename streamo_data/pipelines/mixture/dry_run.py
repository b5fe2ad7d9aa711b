"""``streamo build --dry-run``: the bill before it is run. Per source and stage, the requests, tokens and
cost a build would spend, so a config with a paid endpoint can be checked before anything is sent.

The recipes do run (they send nothing), because the annotators' jobs depend on the videos and events they
make; an annotator up to date with its stamp is reported as sending nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streamo_data.pipelines.mixture.annotators import annotator_stamp, state_path
from streamo_data.pipelines.mixture.config import AnnotatorConfig, MixtureConfig, SourceConfig
from streamo_data.pipelines.mixture.sources import run_sources
from streamo_data.runtime.runner import Executor
from streamo_data.stages.annotate_llm import AnnotateReport, estimate
from streamo_data.store.storage import AnyPath, make_dirs


@dataclass
class SpendRow:
    """One line of ``build --dry-run``: what one stage of one source would send."""

    source: str
    stage: str
    videos: int = 0
    requests: int = 0
    tokens: int = 0
    cost: float = 0.0
    note: str = ""
    image_tokens: int = 0
    text_tokens: int = 0
    counted: bool = True  # False: the paper's method beside ours, for comparison; not part of the bill


def dry_run(config: MixtureConfig, work_dir: AnyPath, executor: Executor) -> list[SpendRow]:
    """Per source and stage, the requests, tokens and cost a build would spend; nothing is sent and no
    release is written. The recipes do run (into the work dir, as the build would: they send nothing),
    because the annotators' jobs depend on the videos and events they make. Estimates are upper bounds
    (see :func:`streamo_data.stages.annotate_llm.estimate`); an annotator up to date sends nothing."""
    make_dirs(work_dir)
    reports = run_sources(config, work_dir, executor)
    rows: list[SpendRow] = []
    for source in config.sources:
        out = work_dir / "sources" / source.name
        report = reports.get(source.name, {})
        rows.append(SpendRow(source.name, "recipe" if source.recipe else "ingest", videos=report.get("videos", 0),
                             note=f"{report.get('events', 0)} events"))
        for annotator in source.annotators:
            stage = f"annotate {annotator.name} ({annotator.kind}, {annotator.settings.model})"
            if not source.has_video_files:
                rows.append(SpendRow(source.name, stage, note="no videos on disk (metadata only): cannot be annotated"))
                continue
            rows.extend(_spend(config, source, annotator, out, stage))
    return rows


def _spend(config: MixtureConfig, source: SourceConfig, annotator: AnnotatorConfig, out: AnyPath,
           label: str) -> list[SpendRow]:
    """One row per request stage of one annotator (one for a single-request annotator)."""
    from streamo_data.stages.annotate_llm import load_prompts

    options = annotator.with_cache(out.parent.parent / "llm_cache")
    try:
        prompts = load_prompts(options)
        estimated: AnnotateReport = estimate(out, options)
    except (OSError, ValueError) as error:  # a UserError (a template, a frame) among them
        return [SpendRow(source.name, label, note=f"cannot estimate: {error}")]
    state_file = state_path(out, annotator.name)
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("stamp") == annotator_stamp(source, annotator, config.fps, prompts) and state.get("complete"):
        return [SpendRow(source.name, label, videos=estimated.videos,
                         note=f"up to date ({estimated.estimated_requests} requests cached): sends nothing")]
    skipped = sum(estimated.rejects.values())
    rows = []
    for stages, counted in ((estimated.stages, True), (estimated.paper_stages, False)):
        for stage, tally in stages.items():
            name = label if len(estimated.stages) == 1 else f"{label}: {stage}"
            note = f"{skipped} videos without a file" if skipped else ""
            rows.append(SpendRow(source.name, name, videos=estimated.videos, requests=int(tally["requests"]),
                                 tokens=int(tally["tokens"]), cost=float(tally["cost"]),
                                 image_tokens=int(tally["image_tokens"]), text_tokens=int(tally["text_tokens"]),
                                 counted=counted,
                                 note=note if counted else "the paper's one window a request, for comparison"))
    return rows or [SpendRow(source.name, label, videos=estimated.videos, note="no jobs")]
