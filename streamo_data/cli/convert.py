"""`streamo convert ...` and `streamo export ...`: the reference raw and stream formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamo_data.cli.common import FpsOpt, console, err

convert_app = typer.Typer(help="Read the reference raw-annotation format.", no_args_is_help=True)
export_app = typer.Typer(help="Write a release in other formats.", no_args_is_help=True)


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
