"""A release's dataset card: README.md with the YAML header that `datasets` reads as it is (every config
naming its files), the release's composition beside the paper's, and its plots under ``assets/``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from streamo_data.core.schema import ReleaseManifest, stable_id
from streamo_data.corpus.fidelity import PAPER_SAMPLES, PAPER_VIDEOS, fidelity_markdown
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import parquet_file

SPLITS = ("train", "validation")


def card_plots(out_dir: AnyPath, manifest: ReleaseManifest, stats: dict[str, Any]) -> list[tuple[str, str]]:
    """The card's plots under ``assets/`` (files of an earlier or killed run that these do not replace are removed),
    with one example timeline per task: the first sample of its first shard."""
    from streamo_data.core.schema import StreamingSample
    from streamo_data.plots.card import ASSETS, write_card_plots
    from streamo_data.store.tables import from_row

    examples: dict[str, StreamingSample] = {}
    for shard in manifest.shards:
        if shard.task not in examples and shard.num_rows:
            first = next(parquet_file(out_dir / shard.path).iter_batches(batch_size=1))  # not the whole shard
            row = first.to_pylist()[0]
            examples[shard.task] = from_row(StreamingSample, row)
    plots = write_card_plots(out_dir, stats, examples)
    kept = {Path(path).name for _, path in plots}
    for stale in (out_dir / ASSETS).iterdir():  # an earlier release's plots, a killed run's temporary files
        if stale.name not in kept and stale.is_file():
            stale.unlink()
    return plots


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
    release's stats (:func:`streamo_data.release.stats.manifest_stats`), its fidelity to the paper's corpus."""
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
        + splits_section(manifest)
        + (fidelity_section(stats) if stats else "")
        + (plots_section(plots) if plots else "")
    )


def splits_section(manifest: ReleaseManifest) -> str:
    """What the card promises about benchmark videos: the recipes' default of official training subsets only,
    and what each benchmark file of the build took out, by source."""
    text = ("\n## Splits and contamination\n\nSource annotations are read from their official training subsets"
            " only (COIN `training`, YouCook2 `training`, ActivityNet `train.json`, ...) unless the build's"
            " config chose otherwise.")
    if not manifest.decontamination:
        return text + " No benchmark file was given to decontaminate against.\n"
    rows = "".join(
        f"| {entry.benchmark} | {entry.file} | {entry.benchmark_videos} | {_by_source(entry.corpus_videos)} | "
        f"{_by_source(entry.candidates_removed)} |\n" for entry in manifest.decontamination)
    return (text + " Every video of these benchmarks was removed from every split (matched by upstream id):\n\n"
            "| benchmark | file | its videos | corpus videos removed | candidate samples removed |\n"
            "|---|---|---|---|---|\n" + rows)


def _by_source(counts: dict[str, int]) -> str:
    return ", ".join(f"{source} {n}" for source, n in sorted(counts.items())) or "0"


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
