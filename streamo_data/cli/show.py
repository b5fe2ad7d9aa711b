"""`streamo show`: a sample's timeline as a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from streamo_data.cli.common import ReleaseArg, ReplaceOpt, console, err, release_location
from streamo_data.core.errors import UserError
from streamo_data.store.outputs import check_output_file

app = typer.Typer()


@app.command()
def show(
    release: ReleaseArg,
    sample_id: Annotated[str | None, typer.Argument(help="A sample_id of the release (or use --random).")] = None,
    out: Annotated[Path, typer.Option("--out", help="FILE.png or FILE.html; with --random, a folder.")] = Path(
        "timeline.png"),
    video_root: Annotated[Path | None, typer.Option(help="Videos, for thumbnails (blank cells without).")] = None,
    random_count: Annotated[int | None, typer.Option("--random", help="Draw N samples at random instead.")] = None,
    task: Annotated[str | None, typer.Option(help="With --random: only this task.")] = None,
    image_format: Annotated[str, typer.Option("--format", help="With --random: png or html.")] = "png",
    seed: Annotated[int, typer.Option(help="With --random: the draw's seed.")] = 0,
    replace: ReplaceOpt = False,
) -> None:
    """Draw a sample as a timeline: its frames coloured by state, the question and answers on their frames."""
    from streamo_data.plots.show import draw, load_samples, random_ids

    release_dir = release_location(release)
    if video_root is not None and not video_root.is_dir():
        raise UserError(f"--video-root {video_root}: no such folder")
    if (sample_id is None) == (random_count is None):
        raise UserError("give a SAMPLE_ID or --random N (one of them)")
    if sample_id is not None:
        ids, targets = [sample_id], [out]
    elif random_count is not None:
        if random_count < 1:
            raise UserError(f"--random must be at least 1, not {random_count}")
        if image_format not in ("png", "html"):
            raise UserError(f"--format must be png or html, not {image_format!r}")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: with --random, give a folder")
        ids = random_ids(release_dir, random_count, task, seed)
        targets = [out / f"{k:02d}_{drawn}.{image_format}" for k, drawn in enumerate(ids)]
    for target in targets:  # all checked before any is drawn
        check_output_file(target, "--out", reads=[release_dir, *([video_root] if video_root else [])],
                          replace=replace)
    for sample, target in zip(load_samples(release_dir, ids), targets, strict=True):
        note = draw(sample, target, video_root)
        console.print(f"{sample.task} {sample.sample_id} -> {target} ({escape(note)})")
        if note.startswith("cannot read"):
            err.print(f"[yellow]warning[/yellow] {escape(note)}", soft_wrap=True)
