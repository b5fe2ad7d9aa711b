"""`streamo benchmark ovo-bench run|score`: a model on OVO-Bench, scored as OVO-Bench's authors score."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamo_data.cli.common import ReplaceOpt, client_settings, console, err
from streamo_data.core.errors import UserError

benchmark_app = typer.Typer(help="Score a model on a streaming benchmark.", no_args_is_help=True)
ovo_app = typer.Typer(help="OVO-Bench (github.com/JoeLeelyf/OVO-Bench): run a model, score result files.",
                      no_args_is_help=True)
benchmark_app.add_typer(ovo_app, name="ovo-bench")


@ovo_app.command("run")
def run(
    annotations: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="OVO-Bench's ovo_bench_new.json.")],
    video_root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Where its `video` paths are.")],
    model: Annotated[str, typer.Option(help="A run of `streamo train --model`, a Qwen-VL model folder, or, with"
                                       " --base-url, the model name the endpoint knows.")],
    out: Annotated[Path, typer.Option(help="The result file (OVO-Bench's layout); its work goes to OUT.work/.")],
    protocol: Annotated[str, typer.Option(help="offline (the benchmark's own: the clip up to the question, one"
                                          " prompt) or streaming (a frame a turn with state tokens).")] = "offline",
    base_url: Annotated[str | None, typer.Option(help="An OpenAI-compatible endpoint, e.g."
                                                 " http://localhost:8000/v1.")] = None,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key ('' for none).")]
    = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Questions in flight (an endpoint's requests).")] = 16,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute at most.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute at most.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take.")] = 120.0,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated tasks (default: all twelve).")] = None,
    max_frames: Annotated[int, typer.Option(help="Offline: frames spread over the clip, at most.")] = 64,
    max_side: Annotated[int, typer.Option(help="Frames are decoded at most this many pixels a side.")] = 448,
    frame_side: Annotated[int, typer.Option(help="Local model: frames resized to this square side.")] = 448,
    replace: ReplaceOpt = False,
) -> None:
    """Ask a model every question of OVO-Bench; rerun the same command to resume."""
    from streamo_data.benchmarks.ovo.annotations import load_annotations
    from streamo_data.benchmarks.ovo.models import BenchModel, EndpointModel, LocalModel
    from streamo_data.benchmarks.ovo.protocols import PROTOCOLS
    from streamo_data.benchmarks.ovo.run import RunSettings, file_digest, run_benchmark, work_dir
    from streamo_data.benchmarks.ovo.tasks import CATEGORY_OF
    from streamo_data.train.vlm.loop import model_dir_of

    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    chosen = None if tasks is None else {t.strip().upper() for t in tasks.split(",") if t.strip()}
    if chosen is not None and (unknown := sorted(chosen - set(CATEGORY_OF))):
        raise UserError(f"--tasks: {', '.join(unknown)} not OVO-Bench tasks ({', '.join(CATEGORY_OF)})")
    if max_frames < 1 or max_side < 28 or frame_side < 28 or concurrency < 1:
        raise UserError("--max-frames and --concurrency must be at least 1, --max-side and --frame-side at least 28")
    loaded = load_annotations(annotations, chosen)
    for reason, count in loaded.skipped.items():
        err.print(f"[yellow]skipped[/yellow] {count} entries of {annotations}: {reason} (first: id"
                  f" {loaded.first_skipped[reason]})", soft_wrap=True)
    make_model: Callable[[], BenchModel]
    if base_url is not None:
        endpoint_settings = client_settings(model=model, base_url=base_url, api_key_env=api_key_env,
                                            timeout_s=timeout, concurrency=concurrency, requests_per_minute=rpm,
                                            tokens_per_minute=tpm)
        endpoint = endpoint_settings.endpoint

        def make_model() -> BenchModel:
            return EndpointModel.connect(endpoint_settings, work_dir(out))
    else:
        if not (model_dir_of(Path(model)) / "config.json").exists():
            raise UserError(f"--model {model}: not a model folder nor a run of `streamo train --model` (no"
                            " config.json); for an endpoint pass --base-url")
        endpoint, concurrency = None, 1

        def make_model() -> BenchModel:
            return LocalModel(Path(model), frame_side)
    settings = RunSettings(annotations=file_digest(annotations), protocol=protocol, model=model, endpoint=endpoint,
                           max_frames=max_frames, max_side=max_side)

    async def go():  # noqa: ANN202 - the report type is the run module's
        return await run_benchmark(loaded, video_root, make_model(), settings, out, replace, concurrency)

    report = asyncio.run(go())
    for reason, count in report.failed.items():
        err.print(f"[yellow]failed[/yellow] {count} questions: {reason} (first: {report.first_failed[reason]});"
                  " rerun to ask them again", soft_wrap=True)
    console.print(f"{report.answered} questions answered, {report.resumed} from an earlier run,"
                  f" {sum(report.failed.values())} failed of {report.jobs}; {report.frames_decoded} frames decoded,"
                  f" {report.frames_sent} sent; results in {out}")


@ovo_app.command("score")
def score(
    results: Annotated[list[Path], typer.Argument(exists=True, help="Result files, or folders of them.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON here.")] = None,
) -> None:
    """Per-task accuracy, the three category averages and the overall, as OVO-Bench's score.py computes them."""
    from streamo_data.benchmarks.ovo.score import merge_results, score_results
    from streamo_data.benchmarks.ovo.tasks import CATEGORIES, CATEGORY_NAMES
    from streamo_data.store.io import write_text_atomic

    scored = score_results(merge_results(results))
    for reason, count in scored.malformed.items():
        err.print(f"[yellow]left out[/yellow] {count} result entries: {reason} (first:"
                  f" {scored.examples[reason]})", soft_wrap=True)
    table = Table(title="OVO-Bench")
    for column in ("category", "task", "items", "accuracy %"):
        table.add_column(column, justify="right" if column in ("items", "accuracy %") else "left")
    for category, tasks in CATEGORIES.items():
        for task in tasks:
            if task in scored.tasks:
                table.add_row(CATEGORY_NAMES[category], task, str(scored.counts[task]), f"{scored.tasks[task]:.2f}")
        if category in scored.categories:
            table.add_row(f"[bold]{CATEGORY_NAMES[category]}[/bold]", "avg.", "",
                          f"[bold]{scored.categories[category]:.2f}[/bold]")
    if scored.overall is not None:
        table.add_row("[bold]Overall[/bold]", "avg.", "", f"[bold]{scored.overall:.2f}[/bold]")
    console.print(table)
    if scored.missing_categories and scored.overall is not None:
        err.print(f"[yellow]note[/yellow]: no entries for {', '.join(scored.missing_categories)}: the overall is"
                  " the mean of the categories present (OVO-Bench's score.py needs all three)", soft_wrap=True)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(scored.as_json(), indent=2))
