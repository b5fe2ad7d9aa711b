"""`streamo show`: find samples in a release (by id, or a seeded random few of a task) and draw them."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from streamo_data.core.errors import UserError
from streamo_data.core.schema import StreamingSample
from streamo_data.plots.timeline import CELL_W, THUMB_H, drawn_frames, render_html, render_png
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import from_row, read_table
from streamo_data.video.thumbnails import sample_thumbnails

FORMATS = {".png": render_png, ".html": render_html}


def load_samples(release_dir: AnyPath, sample_ids: list[str]) -> list[StreamingSample]:
    """The samples with these ids, in the order asked; a UserError names an id the release lacks."""
    wanted, found = set(sample_ids), {}
    for shard in read_manifest(release_dir).shards:
        table = read_table(release_dir / shard.path)
        mask = pc.is_in(table["sample_id"], value_set=pa.array(sorted(wanted)))
        for row in table.filter(mask).to_pylist():
            found[row["sample_id"]] = from_row(StreamingSample, row)
    missing = [s for s in sample_ids if s not in found]
    if missing:
        raise UserError(f"{release_dir}: no sample {missing[0]!r} (ids are in the sample_id column)")
    return [found[s] for s in sample_ids]


def random_ids(release_dir: AnyPath, count: int, task: str | None, seed: int) -> list[str]:
    """``count`` sample ids drawn with ``seed`` (the same release and seed draw the same samples)."""
    manifest = read_manifest(release_dir)
    if task is not None and task not in manifest.tasks:
        raise UserError(f"--task {task!r} is not in {release_dir} (its tasks: {', '.join(manifest.tasks)})")
    ids: list[str] = []
    for shard in manifest.shards:
        if task is None or shard.task == task:
            ids += read_table(release_dir / shard.path, columns=["sample_id"])["sample_id"].to_pylist()
    if not ids:
        raise UserError(f"{release_dir}: no samples{f' of task {task}' if task else ''}")
    return random.Random(seed).sample(sorted(ids), min(count, len(ids)))


def draw(sample: StreamingSample, out: Path, video_root: Path | None) -> str:
    """Draw one sample into ``out`` (.png or .html); returns what the thumbnails came from (and, for a
    sample longer than a timeline holds, how much of it is drawn)."""
    render = FORMATS.get(out.suffix.lower())
    if render is None:
        raise UserError(f"--out {out}: give a .png or .html file")
    thumbnails, note = None, "no --video-root: blank frames"
    shown = drawn_frames(sample)
    if video_root is not None:
        video = video_root / sample.video_path
        thumbnails = sample_thumbnails(str(video), shown, sample.fps, CELL_W, THUMB_H)
        note = f"frames of {video}" if thumbnails is not None else f"cannot read {video}: blank frames"
    render(sample, out, thumbnails)
    return note if shown == sample.num_frames else f"{note}; the first {shown} of {sample.num_frames} frames"
