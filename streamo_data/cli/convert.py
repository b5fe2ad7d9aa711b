"""`streamo convert ...` and `streamo export ...`: the reference raw and stream formats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from streamo_data.cli.common import FpsOpt, ReleaseArg, ReplaceOpt, console, err, release_location
from streamo_data.store.outputs import check_output_file

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
    from streamo_data.stages.raw_to_samples import raw_to_samples

    summary = raw_to_samples(raw, video_root, out, fps)  # an unreadable file is a UserError: one line
    console.print(f"{summary.written} samples from {summary.records} records -> {out / 'samples.parquet'}")
    for reason, count in summary.rejected.most_common():
        err.print(f"[yellow]rejected[/yellow] {count}× {escape(reason)}")


@convert_app.command("raw-to-stream")
def convert_raw_to_stream(
    raw: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help=".json (reference layout) or .jsonl")],
    video_root: Annotated[str | None, typer.Option(help="Prefix joined to each video_path.")] = None,
    fps: FpsOpt = 1.0,
    system_prompt: Annotated[str | None, typer.Option(help="Replace the reference's system prompt.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes; default: one per core.")] = None,
    replace: ReplaceOpt = False,
) -> None:
    """Raw records -> stream format exactly as the reference converter writes it (its drops reported)."""
    from streamo_data.reference.convert import raw_to_stream

    check_output_file(out, "--out", reads=[raw], replace=replace)
    summary = raw_to_stream(raw, video_root, out, fps, system_prompt=system_prompt, workers=workers)
    console.print(f"{summary.written} of {summary.records} records -> {out}")
    # plain lines, written at once: a large file has a warning per record, and rich renders ~10K lines/s
    sys.stderr.write("".join(f"dropped {line}\n" for line in summary.dropped))
    sys.stderr.write("".join(f"warning {line}\n" for line in summary.warnings))


@export_app.command("stream-format")
def export_stream_format(
    release: ReleaseArg,
    out: Annotated[Path, typer.Option("--out", help="FILE.jsonl, or FILE.json for the reference's JSON list.")],
    video_root: Annotated[str | None, typer.Option(help="Prefix joined to each video path.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
    replace: ReplaceOpt = False,
) -> None:
    """Render a release to the reference stream format that the Streamo ms-swift trainer reads."""
    from streamo_data.exports.stream_format import export_stream_format as export

    release_dir = release_location(release)
    check_output_file(out, "--out", reads=[release_dir], replace=replace)
    count = export(release_dir, out, video_root, split)
    console.print(f"{count} samples -> {out}")


@export_app.command("raw")
def export_raw(
    release: ReleaseArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for the released layout (empty, new, or an earlier"
                                                    " export).")],
    our_names: Annotated[bool, typer.Option(help="Keep our task and source names instead of the release's.")]
    = False,
) -> None:
    """Write a release in the released Streamo-Instruct layout: task folders of JSON lists of raw records."""
    from streamo_data.exports.raw_layout import export_raw as export

    summary = export(release_location(release), out, release_names=not our_names)  # a UserError is one line, exit 2
    for name, count in sorted(summary.files.items()):
        console.print(f"{count:>8} {name}")
    console.print(f"{summary.records} records -> {out}")
