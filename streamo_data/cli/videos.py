"""`streamo videos`: the videos a release needs, and which of them a video root holds in a usable state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streamo_data.cli.common import ReplaceOpt, console, release_location
from streamo_data.core.errors import UserError
from streamo_data.store.outputs import check_output_file
from streamo_data.store.storage import AnyPath

if TYPE_CHECKING:
    from streamo_data.exports.video_check import NeededVideo

app = typer.Typer()


@app.command()
def videos(
    release: Annotated[str, typer.Argument(help="A release (a path or a URL), or a mixture config (.yaml): then"
                                          " its sources' recipes run into --work and their videos are listed.")],
    work: Annotated[Path | None, typer.Option("--work", help="With a config: the build's work dir (default"
                                              " work/<name>, as `streamo build` uses).")] = None,
    video_root: Annotated[Path | None, typer.Option("--video-root", help="Check each video under this folder.")]
    = None,
    missing: Annotated[Path | None, typer.Option(
        "--missing", help="Write the videos to fetch (missing or unusable; all without --video-root) here: JSONL"
                          " (source, id, path, status, expected duration) for a .jsonl name, else one path a line.")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the whole report as JSON here.")] = None,
    replace: ReplaceOpt = False,
) -> None:
    """Per source, the videos the release's samples use (upstream id, expected duration, latest annotated
    time); with --video-root, which are present, missing, zero-byte, unreadable or too short, and the share of
    each task's samples that can be trained on (by the rule `streamo train` skips with). Exit 0 whatever is
    missing: it is a report; bad input (no such release or folder, an output that exists) exits 2."""
    from streamo_data.exports.video_check import STATUSES, check_videos, missing_list, needed_videos
    from streamo_data.store.io import write_text_atomic

    is_config = Path(release).suffix.lower() in (".yaml", ".yml")
    target: AnyPath = Path(release) if is_config else release_location(release)
    if is_config and not Path(release).is_file():
        raise UserError(f"{release}: no such config file")
    if video_root is not None and not video_root.is_dir():
        raise UserError(f"--video-root {video_root}: no such folder")
    reads = [target, *([video_root] if video_root else [])]
    for option, output in (("--missing", missing), ("--json", json_out)):
        if output is not None:
            check_output_file(output, option, reads=reads, replace=replace)
    needed = sources_needs(Path(release), work) if is_config else needed_videos(target)
    report = check_videos(needed, video_root)
    columns = ["needed"] if video_root is None else list(STATUSES)
    table = Table(title=f"{len(report.videos)} videos needed by {escape(str(target))}")
    table.add_column("source")
    for column in columns:
        table.add_column(column, justify="right")
    for source, counts in report.by_source().items():
        table.add_row(escape(source), *(str(counts.get(column, 0)) for column in columns))
    console.print(table)
    if video_root is not None:
        tasks = Table(title=f"trainable with the videos under {escape(str(video_root))}")
        for column in ("task", "samples", "trainable", "share"):
            tasks.add_column(column, justify="left" if column == "task" else "right")
        for task, (usable, total) in report.trainable().items():
            tasks.add_row(task, str(total), str(usable), f"{usable / total:.1%}" if total else "-")
        console.print(tasks)
        for video in report.unusable()[:10]:
            console.print(f"  {video.status}: {escape(video.path)} ({escape(video.detail)})", soft_wrap=True)
    if missing is not None:
        write_text_atomic(missing, missing_list(report, missing.suffix == ".jsonl"))
        console.print(f"videos to fetch written to {escape(str(missing))}")
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report.as_dict(), indent=2) + "\n")
        console.print(f"report written to {escape(str(json_out))}")


def sources_needs(config_path: Path, work: Path | None) -> list[NeededVideo]:
    """A config's videos before any build: its sources' recipes run (reused when unchanged) into the work dir."""
    from streamo_data.exports.video_check import needed_by_sources
    from streamo_data.pipelines.mixture import MixtureConfig, run_sources
    from streamo_data.runtime.runner import Executor

    config = MixtureConfig.load(config_path)
    work_dir = work or Path("work") / config.name
    run_sources(config, work_dir, Executor(kind="local"))
    return needed_by_sources([work_dir / "sources" / source.name for source in config.sources])
