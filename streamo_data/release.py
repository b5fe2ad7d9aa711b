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
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from streamo_data import __version__
from streamo_data.errors import UserError
from streamo_data.fidelity import PAPER_SAMPLES, PAPER_VIDEOS, fidelity_markdown
from streamo_data.io import sha256_of, write_text_atomic
from streamo_data.manifest import MANIFEST, PENDING, pending_shards, read_manifest
from streamo_data.schema import ReleaseManifest, ShardInfo, stable_id
from streamo_data.storage import AnyPath, is_remote, make_dirs, put, relative_name
from streamo_data.tables import SAMPLE_FEATURES, parquet_file, read_table

SPLITS = ("train", "validation")


def hash_order(video_ids: Iterable[str], seed: int) -> list[str]:
    """Videos in a seeded hash order: the split depends only on the set of videos, never on row order."""
    return sorted(video_ids, key=lambda v: stable_id(seed, v))


def held_out_share(video_ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The first ``fraction`` of the videos in hash order: at least one, never all, none for fewer
    than two videos or a zero fraction."""
    ordered = hash_order(set(video_ids), seed)
    if len(ordered) < 2 or fraction <= 0:
        return set()
    return set(ordered[: min(len(ordered) - 1, max(1, round(fraction * len(ordered))))])


def validation_videos(videos_by_task: dict[str, set[str]], fraction: float, seed: int) -> set[str]:
    """Videos of the validation split. Whole videos move, so no video is in both splits; each task
    with two or more videos gets at least one of them held out, and no task is left without a train
    video (``load_dataset(..., split="train")`` must work for every task): where the two conflict,
    train wins and that task's validation may stay empty."""
    held = held_out_share(set().union(*videos_by_task.values()) if videos_by_task else set(), fraction, seed)
    if not held:
        return held
    for task in sorted(videos_by_task):
        ids = videos_by_task[task]
        if len(ids) >= 2 and not ids & held:
            held.add(hash_order(ids, seed)[0])
    for task in sorted(videos_by_task):
        ids = videos_by_task[task]
        if ids and ids <= held:
            held.discard(hash_order(ids, seed)[0])
    return held


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
        key = (task, split)
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
    if (out_dir / PENDING).exists():
        (out_dir / PENDING).unlink()


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


def publish(out_dir: AnyPath, manifest: ReleaseManifest) -> None:
    """The card and the manifest, written last: a release without them is visibly unfinished. The card
    states the release's composition beside the paper's, read back from the shards just written."""
    from streamo_data.stats import manifest_stats  # stats reads releases through this module

    stats = manifest_stats(out_dir, manifest)
    plots = card_plots(out_dir, manifest, stats)
    write_text_atomic(out_dir / "README.md", dataset_card(manifest, stats, plots))
    write_text_atomic(out_dir / MANIFEST, manifest.model_dump_json(indent=2))
    remove_unlisted_shards(out_dir, manifest)


def card_plots(out_dir: AnyPath, manifest: ReleaseManifest, stats: dict[str, Any]) -> list[tuple[str, str]]:
    """The card's plots under ``assets/`` (files of an earlier or killed run that these do not replace are removed),
    with one example timeline per task: the first sample of its first shard."""
    from streamo_data.plots.card import ASSETS, write_card_plots
    from streamo_data.schema import StreamingSample
    from streamo_data.tables import from_row

    examples: dict[str, StreamingSample] = {}
    for shard in manifest.shards:
        if shard.task not in examples and shard.num_rows:
            row = read_table(out_dir / shard.path).slice(0, 1).to_pylist()[0]
            examples[shard.task] = from_row(StreamingSample, row)
    plots = write_card_plots(out_dir, stats, examples)
    kept = {Path(path).name for _, path in plots}
    for stale in (out_dir / ASSETS).iterdir():  # an earlier release's plots, a killed run's temporary files
        if stale.name not in kept and stale.is_file():
            stale.unlink()
    return plots


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


def release_fingerprint(manifest: ReleaseManifest) -> str:
    """A hash of every shard's checksum: two releases share it only if they hold the same bytes."""
    return stable_id(sorted((shard.path, shard.sha256) for shard in manifest.shards))


def _config(name: str, files: dict[str, list[str]], fingerprint: str, default: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {"config_name": name}
    if default:
        config["default"] = True
    config["data_files"] = [{"split": split, "path": path} for split, path in files.items()]
    # `datasets` caches a local folder under its name and its card's configs, not its files' contents,
    # so a release rebuilt in place (or another folder of the same name) would be served stale from the
    # cache. The fingerprint in each config's description makes the cache key follow the contents.
    config["description"] = f"streamo-data release {fingerprint}"
    return config


def dataset_card(manifest: ReleaseManifest, stats: dict[str, Any] | None = None,
                 plots: list[tuple[str, str]] | None = None) -> str:
    """README.md with the YAML header that `datasets` uses to find configs and splits, and, given the
    release's stats (:func:`streamo_data.stats.manifest_stats`), its fidelity to the paper's corpus."""
    # each file by name, never a glob: a re-release puts its shards beside these before its manifest
    # replaces this one, and a glob would load both
    files_of: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for shard in manifest.shards:
        files_of[shard.task][shard.split].append(shard.path)
        files_of["\0all"][shard.split].append(shard.path)
    fingerprint = release_fingerprint(manifest)

    def files(key: str) -> dict[str, list[str]]:
        return {split: sorted(files_of[key][split]) for split in SPLITS if files_of[key][split]}

    configs = [_config("all", files("\0all"), fingerprint, default=True)]
    configs += [_config(task, files(task), fingerprint) for task in manifest.tasks]
    header = {
        "configs": configs,
        "license": "other",
        "task_categories": ["video-text-to-text"],
        "tags": ["streaming-video", "video-llm", "instruction-tuning", "streamo"],
        "pretty_name": manifest.name,
    }
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for shard in manifest.shards:
        counts[(shard.task, shard.split)] += shard.num_rows
    table = "\n".join(
        f"| {task} | {counts[(task, 'train')]} | {counts[(task, 'validation')]} |" for task in manifest.tasks
    )
    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n"
        f"# {manifest.name}\n\n"
        f"A streaming-video instruction set in the Streamo-Instruct layout, built by streamo-data "
        f"{manifest.version}: {manifest.num_samples} samples at {manifest.fps:g} fps. Each row is one instruction"
        " on one video, with the reference raw-annotation turns (`questions`, `responses`, times in seconds) and"
        " the per-frame labels derived from them (`states`: silence | standby | response, and `answers`: the text"
        " said on response frames).\n\n"
        "| task | train | validation |\n|---|---|---|\n" + table + "\n\n"
        "Splits are by video: no video appears in both. `manifest.json` lists every shard with its sha256.\n\n"
        "```python\nfrom datasets import load_dataset\n"
        'ds = load_dataset("path/to/this/folder", "temporal_grounding", split="train")\n'
        "everything = load_dataset(\"path/to/this/folder\")  # all tasks\n```\n\n"
        "To train with the reference Streamo trainer, render the stream format:"
        " `streamo export stream-format THIS_FOLDER --out stream.jsonl --video-root /path/to/videos`.\n"
        + (fidelity_section(stats) if stats else "")
        + (plots_section(plots) if plots else "")
    )


def plots_section(plots: list[tuple[str, str]]) -> str:
    return "\n## Pictures\n\n" + "".join(f"**{caption}**\n\n![{caption}]({path})\n\n" for caption, path in plots)


def fidelity_section(stats: dict[str, Any]) -> str:
    """The card's comparison with the paper's Streamo-Instruct-465K (the same figures as `streamo stats`)."""
    return (
        "\n## Fidelity to the paper's corpus\n\n"
        f"This release: {stats['samples']} samples over {stats['videos']} videos, {stats['frames']} frames."
        f" The paper's Streamo-Instruct (arXiv 2512.21334, section 4 and Fig. 3): {PAPER_SAMPLES} samples over"
        f" {PAPER_VIDEOS} videos. Shares are of samples, differences in percentage points; the state ratio is"
        " scaled to the paper's total of 17 (12:3:2); video lengths count each distinct video once, a bin"
        " closed below and open above; the paper states no responses per sample.\n\n"
        + fidelity_markdown(stats["fidelity"]) + "\n"
    )
