"""What a stage may do to a work directory that already holds work: merge into it, or refuse and say why.

Rules (one per command that writes a work directory's shared tables):

* ``streamo recipe``: merges by source. Its events replace only the events of its own source (a rerun does
  not duplicate them); events of other sources (other recipes, the offline and the LLM annotators) stay.
  Its videos are added; a video the work directory already has keeps its row when that row was probed (a
  probed row is better than one known from annotations), and takes this recipe's row when it was known
  from annotations only (the annotations just read are the fresher metadata: a corrected duration in a
  re-imported file reaches the frame grid). Videos known only from annotations whose events are all gone are dropped.
  It refuses a sampling fps other than the work directory's, and a videos folder other than the one the
  work directory was ingested from. ``--replace`` starts events and videos over.
* ``streamo ingest``: refuses a work directory whose videos came from another folder, or from a recipe,
  because ingest rewrites videos.parquet from the folder it is given and the events of every video not in
  it would be left without a video. ``--replace`` goes ahead (and the CLI says how many events it orphaned).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.core.schema import METADATA_BACKEND
from streamo_data.store.storage import AnyPath, location, resolved
from streamo_data.store.tables import EVENT_FEATURES, VIDEO_FEATURES, read_table

# The files of a work directory, by the stage that writes them: ingest (videos, its manifest), recipes and
# annotators (events), build (samples, rejects).
VIDEOS = "videos.parquet"
EVENTS = "events.parquet"
SAMPLES = "samples.parquet"
REJECTS = "rejects.jsonl"
INGEST_MANIFEST = "ingest.json"

EVENT_ORDER = [("video_id", "ascending"), ("start_s", "ascending"), ("end_s", "ascending"),
               ("event_id", "ascending")]


def ingested_from(work_dir: AnyPath) -> AnyPath | None:
    """The videos folder recorded in ``ingest.json``, or None when the work directory has none."""
    manifest = work_dir / INGEST_MANIFEST
    if not manifest.exists():
        return None
    try:
        return location(json.loads(manifest.read_text(encoding="utf-8"))["video_dir"])
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{manifest}: not an ingest record ({error})") from error


def check_ingest_target(work_dir: AnyPath, video_dir: Path, replace: bool) -> None:
    """Refuse an ingest that would replace videos of another origin, unless ``replace``."""
    if replace:
        return
    previous = ingested_from(work_dir)
    if previous is not None and previous != resolved(video_dir):
        raise UserError(f"{work_dir} holds videos ingested from {previous}: ingesting {video_dir} would replace"
                        f" its {VIDEOS} and leave the events of those videos without one; use another --out,"
                        " or --replace to start it over")
    if previous is None and (work_dir / VIDEOS).exists():
        raise UserError(f"{work_dir}/{VIDEOS} was written by a recipe, not by ingest: ingesting {video_dir} would"
                        " replace it; ingest into another --out (and give the recipe --videos OUT/videos.parquet),"
                        " or --replace")


def orphaned_events(work_dir: AnyPath) -> int:
    """Events whose video is not in videos.parquet (what ``ingest --replace`` can leave behind)."""
    if not (work_dir / EVENTS).exists() or not (work_dir / VIDEOS).exists():
        return 0
    videos = read_table(work_dir / VIDEOS, columns=["video_id"])["video_id"]
    events = read_table(work_dir / EVENTS, columns=["video_id"])["video_id"]
    return int(pc.sum(pc.invert(pc.is_in(events, value_set=videos))).as_py() or 0)


def _existing(path: AnyPath, schema: pa.Schema) -> pa.Table | None:
    if not path.exists():
        return None
    table = read_table(path)
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowException) as error:
        raise UserError(f"{path}: its columns are not those of a work directory's {path.name} ({error})") from error


def merge_recipe_output(work_dir: AnyPath, source: str, events: pa.Table, videos: Iterable[dict[str, Any]],
                        fps: float, video_dir: Path | None, replace: bool) -> tuple[pa.Table, pa.Table]:
    """The events and videos tables a recipe writes into ``work_dir``, merged by the rules above.

    Raises UserError, before anything is written, when the work directory is at another fps or was
    ingested from another folder."""
    new_videos = {row["video_id"]: row for row in videos}
    old_videos = None if replace else _existing(work_dir / VIDEOS, VIDEO_FEATURES.arrow_schema)
    old_events = None if replace else _existing(work_dir / EVENTS, EVENT_FEATURES.arrow_schema)
    if old_videos is not None:
        rates = sorted({r for r in old_videos["sample_fps"].to_pylist() if r is not None})
        if rates and fps not in rates:
            shown = ", ".join(f"{r:g}" for r in rates)
            raise UserError(f"{work_dir} holds videos sampled at {shown} fps and this recipe would add videos at"
                            f" {fps:g} fps: pass --fps {rates[0]:g}, use another --out, or --replace")
        previous = ingested_from(work_dir)
        if video_dir is not None and previous is not None and previous != resolved(video_dir):
            raise UserError(f"{work_dir} was ingested from {previous}, not from --videos {video_dir}: use another"
                            " --out, or --replace")
    if old_events is not None:
        kept = old_events.filter(pc.not_equal(old_events["source"], source))
        events = pa.concat_tables([kept, events.cast(kept.schema)])
    events = events.sort_by(EVENT_ORDER)

    rows = {row["video_id"]: row for row in old_videos.to_pylist()} if old_videos is not None else {}
    for video_id, row in new_videos.items():
        if video_id not in rows or rows[video_id]["backend"] == METADATA_BACKEND:
            rows[video_id] = row
    referenced = set(events["video_id"].to_pylist())
    kept_rows = [rows[k] for k in sorted(rows) if rows[k]["backend"] != METADATA_BACKEND or k in referenced]
    return events, pa.Table.from_pylist(kept_rows, schema=VIDEO_FEATURES.arrow_schema)


def video_root(work_dir: AnyPath) -> Path:
    """The folder the work directory's videos were ingested from (their paths are relative to it)."""
    manifest = work_dir / INGEST_MANIFEST
    if not manifest.exists():
        raise MissingInput(f"{work_dir} has no {INGEST_MANIFEST}: run `streamo ingest` into it first")
    return Path(json.loads(manifest.read_text())["video_dir"])
