"""A release: Parquet shards per task and split, a dataset card that `datasets` reads as it is, and a
manifest with a checksum per shard.

Layout (``datasets.load_dataset(RELEASE_DIR, "<task>")`` and ``load_dataset(RELEASE_DIR)`` both work
with no extra arguments, because the card's YAML ``configs`` name every file)::

    README.md                                   dataset card, YAML configs first
    manifest.json                               shards, row counts, sha256
    data/<task>/train-00000-of-00002-<sha16>.parquet    ...
    data/<task>/validation-00000-of-00001-<sha16>.parquet

A release written over an earlier one never touches the earlier one's files before the new manifest is
in place: shard names end in a prefix of their own checksum (as ``datasets``' ``push_to_hub`` names its
shards by fingerprint), so a new shard never overwrites a different old one, the card names its files
one by one instead of by glob, and the old shards are removed only once the new manifest is written.
Until then ``.pending.json`` lists the new shards: a killed or failed re-release leaves the earlier
release whole and valid, and the next run removes what the killed one left.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamo_data import __version__
from streamo_data.core.errors import UserError
from streamo_data.core.schema import ReleaseManifest, ShardInfo
from streamo_data.corpus.split import validation_videos
from streamo_data.release.card import card_plots, dataset_card
from streamo_data.release.stats import CompositionTally, manifest_stats
from streamo_data.store.io import sha256_of, write_text_atomic
from streamo_data.store.manifest import MANIFEST, PENDING, pending_shards, read_manifest
from streamo_data.store.storage import AnyPath, is_remote, make_dirs, put, relative_name
from streamo_data.store.tables import SAMPLE_FEATURES, parquet_file, read_table

MAX_QUEUED_TABLES = 8  # tables handed to the writer threads and not yet written: what the queue may hold
# Writer threads, whatever the number of tasks and splits: compression runs on two cores at once, and each
# thread's allocator keeps memory of its own (a thread per shard cost the driver 200 MB at 465K samples).
WRITER_THREADS = 2


class ShardWriter:
    """Streams sample rows into ``data/<task>/<split>-*.parquet``, one open Parquet writer per task and
    split, rolling over every ``rows_per_shard`` rows, so memory holds one batch whatever the corpus
    size. Shards are written under temporary names and moved to ``<split>-0000i-of-0000N-<sha16>.parquet``
    only when complete (N is known only then), beside an earlier release's shards, which
    :func:`publish` removes once the new manifest is written.
    A release on an object store is staged in a local temporary folder and each finished shard uploaded
    once (an object store has no rename, and a shard must never be seen half written)."""

    def __init__(self, out_dir: AnyPath, rows_per_shard: int) -> None:
        self.out_dir, self.rows_per_shard = out_dir, rows_per_shard
        self.schema = SAMPLE_FEATURES.arrow_schema
        self.open: dict[tuple[str, str], tuple[pq.ParquetWriter, Path, int]] = {}
        self.done: dict[tuple[str, str], list[tuple[Path, int]]] = defaultdict(list)
        self.threads = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
                        for _ in range(WRITER_THREADS)]
        self.lane: dict[tuple[str, str], int] = {}
        self.queued: deque[Future[None]] = deque()
        check_release_target(out_dir)
        remove_pending(out_dir)
        if is_remote(out_dir):
            make_dirs(out_dir)
            self.staging = Path(tempfile.mkdtemp(prefix="streamo-release-"))
        else:
            self.staging = Path(out_dir) / ".staging"
            if self.staging.exists():
                shutil.rmtree(self.staging)  # leftovers of an interrupted run: never part of a release
            self.staging.mkdir(parents=True)

    def write(self, task: str, split: str, table: pa.Table) -> None:
        """Queue ``table`` for its task and split. A (task, split) is always written by the same one of
        the writer threads, so the shards' compression (which pyarrow runs without the GIL) uses the
        cores while the caller reads on, and each shard's rows stay in the order given; at most a few
        tables wait at once."""
        key = (task, split)
        if key not in self.lane:
            self.lane[key] = len(self.lane) % WRITER_THREADS
        self.queued.append(self.threads[self.lane[key]].submit(self._write, key, table))
        while len(self.queued) > MAX_QUEUED_TABLES:
            self.queued.popleft().result()

    def _write(self, key: tuple[str, str], table: pa.Table) -> None:
        task, split = key
        while table.num_rows:
            if key not in self.open:
                path = self.staging / f"{task}.{split}.{len(self.done[key]):05d}.parquet"
                self.open[key] = (pq.ParquetWriter(path, self.schema, compression="zstd"), path, 0)
            writer, path, rows = self.open[key]
            take = min(table.num_rows, self.rows_per_shard - rows)
            writer.write_table(table.slice(0, take))
            table, rows = table.slice(take), rows + take
            self.open[key] = (writer, path, rows)
            if rows >= self.rows_per_shard:
                self._close(key)

    def _close(self, key: tuple[str, str]) -> None:
        writer, path, rows = self.open.pop(key)
        writer.close()
        self.done[key].append((path, rows))

    def finish(self) -> list[ShardInfo]:
        while self.queued:
            self.queued.popleft().result()
        for pool in self.threads:
            pool.shutdown()
        for key in list(self.open):
            self._close(key)
        staged: list[tuple[Path, ShardInfo]] = []
        for (task, split), files in sorted(self.done.items()):
            for index, (path, rows) in enumerate(files):
                checksum = sha256_of(path)
                relative = f"data/{task}/{split}-{index:05d}-of-{len(files):05d}-{checksum[:16]}.parquet"
                staged.append((path, ShardInfo(path=relative, task=task, split=split, num_rows=rows,
                                               sha256=checksum)))
        # named before any is moved in, so that a killed run's shards are known for what they are
        write_text_atomic(self.out_dir / PENDING, json.dumps([shard.path for _, shard in staged]))
        for path, shard in staged:
            put(path, self.out_dir / shard.path)
        shutil.rmtree(self.staging, ignore_errors=True)
        return [shard for _, shard in staged]


def remove_pending(out_dir: AnyPath) -> None:
    """What a killed release left: its shards that the manifest in place does not list, then its list."""
    pending = pending_shards(out_dir)
    if not pending and not (out_dir / PENDING).exists():
        return
    listed = {shard.path for shard in read_manifest(out_dir).shards} if (out_dir / MANIFEST).exists() else set()
    for relative in sorted(pending - listed):
        if (out_dir / relative).exists():
            (out_dir / relative).unlink()
    (out_dir / PENDING).unlink()


def remove_unlisted_shards(out_dir: AnyPath, manifest: ReleaseManifest) -> None:
    """An earlier release's shards, once the new manifest that replaces it is in place."""
    keep = {shard.path for shard in manifest.shards}
    for stale in (out_dir / "data").rglob("*.parquet") if (out_dir / "data").exists() else []:
        if relative_name(stale, out_dir) not in keep:
            stale.unlink()
    remove_pending(out_dir)  # its shards are the manifest's now: only the list goes


# What a release folder holds, finished or interrupted; anything else means the folder is someone's own.
RELEASE_ENTRIES = {"data", ".staging", "README.md", MANIFEST, PENDING, "assets"}


def check_release_target(out_dir: AnyPath) -> None:
    """Refuse an --out that is a file, or a folder holding other things than a release: writing a release
    removes every Parquet file under its data/ that the new manifest does not list."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a release folder")
    others = sorted(p.name for p in out_dir.iterdir() if p.name not in RELEASE_ENTRIES) if out_dir.is_dir() else []
    if others:
        raise UserError(f"--out {out_dir} holds files that are not part of a release ({', '.join(others[:3])}"
                        f"{', …' if len(others) > 3 else ''}): give a new or empty folder")


def publish(out_dir: AnyPath, manifest: ReleaseManifest, tally: CompositionTally | None = None) -> None:
    """The card and the manifest, written last: a release without them is visibly unfinished. The card
    states the release's composition beside the paper's: from ``tally``, the tables that were written
    (a build's), or else read back from the shards just written."""
    stats = tally.stats(manifest) if tally is not None else manifest_stats(out_dir, manifest)
    plots = card_plots(out_dir, manifest, stats)
    write_text_atomic(out_dir / "README.md", dataset_card(manifest, stats, plots))
    write_text_atomic(out_dir / MANIFEST, manifest.model_dump_json(indent=2))
    remove_unlisted_shards(out_dir, manifest)


def write_release(
    samples_path: AnyPath, out_dir: AnyPath, *, name: str = "streamo-instruct", validation_fraction: float = 0.1,
    rows_per_shard: int = 50_000, seed: int = 0,
) -> ReleaseManifest:
    """A release from a work directory's samples.parquet (the path of `streamo build WORK_DIR`)."""
    check_release_options(validation_fraction, rows_per_shard)
    keys = read_table(samples_path, columns=["task", "video_id", "fps"])
    if not keys.num_rows:
        raise UserError(f"{samples_path} holds no samples: nothing to release (see rejects.jsonl beside it)")
    videos_by_task: dict[str, set[str]] = defaultdict(set)
    for task, video_id in zip(keys["task"].to_pylist(), keys["video_id"].to_pylist(), strict=True):
        videos_by_task[task].add(video_id)
    held_out = validation_videos(videos_by_task, validation_fraction, seed)

    writer = ShardWriter(out_dir, rows_per_shard)
    for batch in parquet_file(samples_path).iter_batches(batch_size=8192):
        table = pa.Table.from_batches([batch]).cast(writer.schema)
        held = pc.is_in(table["video_id"], value_set=pa.array(sorted(held_out), pa.string()))
        for task in pc.unique(table["task"]).to_pylist():
            of_task = pc.equal(table["task"], task)
            for split, mask in (("train", pc.and_(of_task, pc.invert(held))), ("validation", pc.and_(of_task, held))):
                writer.write(task, split, table.filter(mask))
    shards = writer.finish()
    fps_values = sorted(set(keys["fps"].to_pylist())) or [1.0]
    manifest = ReleaseManifest(name=name, version=__version__, fps=fps_values[0], num_samples=keys.num_rows,
                               tasks=sorted(videos_by_task), shards=shards)
    publish(out_dir, manifest)
    return manifest


def check_release_options(validation_fraction: float, rows_per_shard: int) -> None:
    """Refuse numbers that would loop forever (0 rows a shard) or split nonsensically, before writing."""
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise UserError(f"--rows-per-shard must be a whole number of at least 1, not {rows_per_shard}")
    if not math.isfinite(validation_fraction) or not 0 <= validation_fraction < 1:
        raise UserError(f"--validation-fraction must be at least 0 and below 1, not {validation_fraction:g}")


