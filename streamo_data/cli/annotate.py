"""`streamo annotate ...`: the offline annotator and the LLM annotators."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streamo_data.cli.common import (
    AddressOpt,
    CpusOpt,
    ExecutorOpt,
    console,
    err,
    make_executor,
    option_error,
    print_summary,
)

if TYPE_CHECKING:  # imported by the commands that run them: `streamo --help` stays fast
    from streamo_data.sources.annotators.client import ClientSettings
    from streamo_data.stages.annotate_llm import AnnotateOptions

# Options every LLM command takes, spelt once.
WorkDirArg = Annotated[Path, typer.Argument(exists=True, file_okay=False)]
ConcurrencyOpt = Annotated[int, typer.Option(help="Requests in flight at once.")]
RpmOpt = Annotated[float | None, typer.Option(help="Requests per minute limit.")]
TpmOpt = Annotated[float | None, typer.Option(help="Tokens per minute limit.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds before a request is retried.")]
PriceInOpt = Annotated[float, typer.Option(help="USD per million input tokens, for the report.")]
PriceOutOpt = Annotated[float, typer.Option(help="USD per million output tokens.")]
WindowOpt = Annotated[float, typer.Option(help="Caption windows (s) for videos without events.")]
ActorsOpt = Annotated[int, typer.Option(help="Ray actors (clients) sharing the concurrency.")]
PromptsOpt = Annotated[Path | None, typer.Option(help="Folder of prompt templates (default: annotators/).")]
ImageMaxSideOpt = Annotated[int, typer.Option(help="Frames are downscaled to this many pixels on the long side.")]
ImageDetailOpt = Annotated[str, typer.Option(help="Vision detail of each frame: low (one fixed cost an image),"
                                                  " high or auto (per 512-pixel tile).")]

annotate_app = typer.Typer(help="Run annotators over ingested videos, writing events.parquet.", no_args_is_help=True)


@annotate_app.command("offline")
def annotate_offline(
    work_dir: WorkDirArg,
    backend: str = "decord",
    force: bool = False,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Deterministic events with no network: generator truth, or OpenCV motion measurements."""
    from streamo_data.stages.annotate_offline import run_annotate_offline

    summary = run_annotate_offline(work_dir, make_executor(executor, address, num_cpus), backend, force)
    print_summary(f"annotate offline -> {work_dir / 'events.parquet'}", summary)


def _options(kind: str, model: str, base_url: str | None, api_key_env: str, concurrency: int, rpm: float | None,
             tpm: float | None, timeout: float, max_attempts: int, price_in: float, price_out: float, window: float,
             prompts: Path | None, actors: int, staged: dict[str, Any]) -> tuple[ClientSettings, AnnotateOptions]:
    """Every option checked before anything runs; a bad one is a UserError naming the flag (its value
    shown with any credentials masked)."""
    from pydantic import ValidationError

    from streamo_data.sources.annotators.client import ClientSettings
    from streamo_data.stages.annotate_llm import AnnotateOptions

    try:
        settings = ClientSettings(model=model, base_url=base_url, api_key_env=api_key_env, timeout_s=timeout,
                                  max_attempts=max_attempts, concurrency=concurrency, requests_per_minute=rpm,
                                  tokens_per_minute=tpm, price_input_per_million=price_in,
                                  price_output_per_million=price_out)
        return settings, AnnotateOptions(kind=kind, settings=settings, prompts=prompts, window_s=window,
                                         actors=actors, **staged)
    except ValidationError as error:
        raise option_error(error) from None


def stage_line(tally: dict[str, float], videos: int) -> str:
    """One stage's --dry-run counts, and per 1,000 videos (requests, image and text tokens)."""
    per = 1000 / videos if videos else 0.0
    return (f"{tally['requests']:g} requests, about {tally['tokens']:,.0f} tokens ({tally['image_tokens']:,.0f} image"
            f" tokens in {tally['images']:g} images, {tally['text_tokens']:,.0f} text), about ${tally['cost']:,.4f};"
            f" per 1,000 videos {tally['requests'] * per:,.0f} requests, {tally['image_tokens'] * per:,.0f} image"
            f" and {tally['text_tokens'] * per:,.0f} text tokens")


def _llm_annotate(kind: str, work_dir: Path, model: str, base_url: str | None, api_key_env: str, concurrency: int,
                  rpm: float | None, tpm: float | None, timeout: float, max_attempts: int, price_in: float,
                  price_out: float, window: float, prompts: Path | None, dry_run: bool, batch: bool, actors: int,
                  executor: str, address: str | None, num_cpus: int | None, **staged: Any) -> None:
    from streamo_data.stages.annotate_llm import estimate, run_batch_pass, run_llm_annotation

    settings, options = _options(kind, model, base_url, api_key_env, concurrency, rpm, tpm, timeout, max_attempts,
                                 price_in, price_out, window, prompts, actors, staged)
    if dry_run:
        estimated = estimate(work_dir, options)
        console.print(f"dry run: {estimated.videos} videos, {estimated.estimated_requests} requests (more if"
                      f" replies need their one retry), about {estimated.estimated_tokens:,} tokens, about"
                      f" ${estimated.estimated_cost:,.4f} at the given prices; nothing was sent")
        for label, stages in (("", estimated.stages), ("paper's one window a request: ", estimated.paper_stages)):
            if len(estimated.stages) > 1 or label and stages:
                for stage, tally in stages.items():
                    console.print(f"  {label}stage {stage}: {stage_line(tally, estimated.videos)}")
        return
    if batch:
        outcome = run_batch_pass(work_dir, options, on_poll=lambda b: console.print(f"batch {b['id']}: {b['status']}"))
        console.print(f"batch: submitted {outcome['submitted']} requests not yet cached; {outcome}")
    report = run_llm_annotation(work_dir, options, make_executor(executor, address, num_cpus))
    usage = report.usage
    console.print(f"annotate {kind}: {report.jobs} jobs on {report.videos} videos -> {report.events} events;"
                  f" requests sent {usage.sent}, cached {usage.cached}, failed {usage.failed}, retries"
                  f" {usage.retries}; tokens {usage.prompt_tokens:,} in / {usage.completion_tokens:,} out;"
                  f" cost ${usage.cost(settings):,.4f}")
    for reason, count in report.rejects.most_common():
        console.print(f"[yellow]rejected[/yellow] {count}× {reason}")
    if report.nothing_answered:
        err.print(f"every request failed ({usage.failed} of {usage.failed}; e.g. {report.first_reject}): nothing"
                  f" was answered by {settings.endpoint}", style="red", soft_wrap=True, markup=False)
        raise typer.Exit(2)


def _register_llm_command(kind: str, summary: str) -> None:
    def command(
        work_dir: WorkDirArg,
        model: Annotated[str, typer.Option(help="Model name as the endpoint knows it.")],
        base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint, e.g."
                                                     " http://localhost:8000/v1 (default: OpenAI).")] = None,
        api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key"
                                                 " ('' for servers that need none).")] = "OPENAI_API_KEY",
        concurrency: ConcurrencyOpt = 16,
        rpm: RpmOpt = None,
        tpm: TpmOpt = None,
        timeout: TimeoutOpt = 60.0,
        max_attempts: int = 5,
        price_in: PriceInOpt = 0.0,
        price_out: PriceOutOpt = 0.0,
        window: WindowOpt = 10.0,
        prompts: PromptsOpt = None,
        image_max_side: ImageMaxSideOpt = 512,
        image_detail: ImageDetailOpt = "low",
        dry_run: Annotated[bool, typer.Option(help="Estimate requests and tokens; send nothing.")] = False,
        batch: Annotated[bool, typer.Option(help="Use the OpenAI Batch API, then validate as usual.")] = False,
        actors: ActorsOpt = 2,
        executor: ExecutorOpt = "ray",
        address: AddressOpt = None,
        num_cpus: CpusOpt = None,
    ) -> None:
        _llm_annotate(kind, work_dir, model, base_url, api_key_env, concurrency, rpm, tpm, timeout, max_attempts,
                      price_in, price_out, window, prompts, dry_run, batch, actors, executor, address, num_cpus,
                      image_max_side=image_max_side, image_detail=image_detail)

    command.__doc__ = summary
    annotate_app.command(kind)(command)


def _register_pipeline_command(kind: str, summary: str) -> None:
    """A multi-stage pipeline: the single-request options plus the pipelines' own."""

    def command(
        work_dir: WorkDirArg,
        model: Annotated[str, typer.Option(help="Vision model name, as the endpoint knows it.")],
        base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (default: OpenAI).")] = None,
        api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")]
        = "OPENAI_API_KEY",
        concurrency: ConcurrencyOpt = 16,
        rpm: RpmOpt = None,
        tpm: TpmOpt = None,
        timeout: TimeoutOpt = 60.0,
        max_attempts: int = 5,
        price_in: PriceInOpt = 0.0,
        price_out: PriceOutOpt = 0.0,
        window: WindowOpt = 10.0,
        text_model: Annotated[str | None, typer.Option(help="Model for the text-only stages (rewrite, queries);"
                                                       " default: --model.")] = None,
        narration_window: Annotated[float, typer.Option(help="Narration: seconds each window covers.")] = 2.0,
        narration_step: Annotated[float, typer.Option(help="Narration: seconds between window starts.")] = 1.0,
        min_span_iou: Annotated[float, typer.Option(help="Verified captions: least temporal IoU between the"
                                                    " captioned and the grounded-back span.")] = 0.5,
        query_source: Annotated[list[str] | None, typer.Option(help="Grounding queries: rewrite captions whose"
                                                               " source starts with this (repeatable; default:"
                                                               " every caption).")] = None,
        narration_windows_per_request: Annotated[int, typer.Option(
            help="Narration: consecutive windows answered in one request over the frames they share (1: one"
                 " window a request, the paper's method).")] = 1,
        prompts: PromptsOpt = None,
        image_max_side: ImageMaxSideOpt = 512,
        image_detail: ImageDetailOpt = "low",
        dry_run: Annotated[bool, typer.Option(help="Estimate requests and tokens per stage; send nothing.")] = False,
        batch: Annotated[bool, typer.Option(help="Answer the first stage with the OpenAI Batch API.")] = False,
        actors: ActorsOpt = 2,
        executor: ExecutorOpt = "ray",
        address: AddressOpt = None,
        num_cpus: CpusOpt = None,
    ) -> None:
        _llm_annotate(kind, work_dir, model, base_url, api_key_env, concurrency, rpm, tpm, timeout, max_attempts,
                      price_in, price_out, window, prompts, dry_run, batch, actors, executor, address, num_cpus,
                      text_model=text_model, narration_window_s=narration_window, narration_step_s=narration_step,
                      min_span_iou=min_span_iou, query_sources=tuple(query_source or ()),
                      narration_windows_per_request=narration_windows_per_request, image_max_side=image_max_side,
                      image_detail=image_detail)

    command.__doc__ = summary
    annotate_app.command(kind.replace("_", "-"))(command)


_register_llm_command("caption", "Caption each event segment (or fixed windows) with a vision LLM.")
_register_llm_command("narration", "Frame-by-frame running commentary: when something new starts, and what.")
_register_llm_command("qa", "Time-sensitive and offline QA pairs with the time span of their evidence.")
_register_pipeline_command("narration_pipeline", "Narration in two stages: what changes in each short window,"
                           " then a rewrite (repeats removed, ~5 words a line) that may reject the video.")
_register_pipeline_command("caption_verified", "Event captions kept only when grounding the caption back gives"
                           " its own span (temporal IoU >= --min-span-iou).")
_register_pipeline_command("action_verified", "Action captions, verified by grounding as caption-verified.")
_register_pipeline_command("grounding_queries", "Existing captions rewritten as search queries (same span).")
_register_pipeline_command("ts_qa_changes", "Time-sensitive QA: one question with >= 2 timed, changing answers.")
