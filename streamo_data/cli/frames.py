"""`streamo export frames`: a release's sampled frames as image files and the image-format records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streamo_data.cli.common import (
    AddressOpt,
    CpusOpt,
    ExecutorOpt,
    ReleaseArg,
    check_backend,
    console,
    err,
    make_executor,
    release_location,
)
from streamo_data.cli.convert import export_app
from streamo_data.core.errors import UserError
from streamo_data.store.outputs import check_not_inside
from streamo_data.video.timing import Timing


def _size(count: float | None) -> str:
    if count is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024
    return str(count)


@export_app.command("frames")
def export_frames(
    release: ReleaseArg,
    video_root: Annotated[Path, typer.Option(help="Folder the release's video paths are relative to.")],
    out: Annotated[Path, typer.Option("--out", help="Frames folder (new, or an earlier export to resume).")],
    timing: Annotated[Timing, typer.Option(help="exact: the native frame nearest each sampled time (our layout,"
                                           " folders by video id); reference: the frames the reference"
                                           " trainer picks, in its cache layout.")] = Timing.EXACT,
    image_format: Annotated[str, typer.Option(help="jpeg or png.")] = "jpeg",
    quality: Annotated[int, typer.Option(help="JPEG quality (1-100).")] = 90,
    max_side: Annotated[int | None, typer.Option(help="Shrink frames to at most this many pixels on their longer"
                                                 " side.")] = None,
    records: Annotated[Path | None, typer.Option(help="Image-format records: .jsonl, or .json for the reference's"
                                                 " JSON list; default OUT/images.jsonl.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
    replace: Annotated[bool, typer.Option(help="Rewrite frame folders made with other settings (never a"
                                                " file, a link, or a folder holding anything but frames).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Estimate frames and disk space; write nothing.")] = False,
    backend: Annotated[str, typer.Option(help="Preferred frame backend: pyav (skips the frames nothing needs;"
                                         " 1.5x decord here) or decord; the other is the fallback.")] = "pyav",
    executor: ExecutorOpt = "ray",
    address: AddressOpt = None,
    num_cpus: CpusOpt = None,
) -> None:
    """Decode each video of a release once and write its sampled frames, plus the image-format records
    (<image> per frame turn, an images list per sample) that the reference trainer reads without decoding."""
    from streamo_data.exports.frames.export import FramesRequest, estimate_frames
    from streamo_data.exports.frames.export import export_frames as export

    release_dir = release_location(release)
    # the frames folder and the records resume in place, so they may exist; never over what is read
    check_not_inside(out, "--out", [release_dir])
    if records is not None:
        if records.is_dir():
            raise UserError(f"--records {records} is a folder, not a file")
        check_not_inside(records, "--records", [release_dir, video_root])
    request = FramesRequest(release_dir, video_root, out, timing=timing,
                            image_format=image_format.lower(), quality=quality, max_side=max_side,
                            split=split, replace=replace,
                            backend=check_backend(backend))
    runner = make_executor(executor, address, num_cpus)
    title = f"export frames ({timing.value}, {request.image_format})"
    if dry_run:
        estimate = estimate_frames(request, runner)
        _print_table(f"{title} --dry-run", [
            *((f"videos: {status}", str(count)) for status, count in sorted(estimate.videos.items())),
            ("frames to write", str(estimate.frames)), ("frames already done", str(estimate.frames_done)),
            ("disk to write (estimate)", _size(estimate.bytes)),
        ])
        _print_errors(estimate.errors)
        return
    summary = export(request, records, runner)
    drift = summary.as_json()["drift_s"]
    _print_table(title, [
        *((f"videos: {status}", str(count)) for status, count in sorted(summary.videos.items())),
        ("frames written", str(summary.frames_written)), ("frames in all", str(summary.frames_total)),
        ("disk written", _size(summary.bytes_written)),
        ("drift at the last frame, median / max (s)", f"{drift['median']:.3f} / {drift['max']:.3f}"),
        ("samples written", str(summary.samples)),
        *((f"[yellow]samples left out[/yellow]: {reason}", str(count))
          for reason, count in sorted(summary.excluded.items())),
        *((("incomplete folders replaced", str(summary.replaced)),) if summary.replaced else ()),
    ])
    console.print(f"{summary.samples} image-format records -> {summary.records_path}")
    _print_errors(summary.errors)


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title)
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _print_errors(errors: list[tuple[str, str]]) -> None:
    for video, reason in errors:
        err.print(f"[red]error[/red] video {escape(video)}: {escape(reason)}", soft_wrap=True, highlight=False)
