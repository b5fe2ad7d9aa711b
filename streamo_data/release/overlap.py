"""Benchmark overlap of a corpus: which of a benchmark's videos a release (ours, or one in the released
Streamo-Instruct layout) trains on, per benchmark task and per corpus source and split.

A model evaluated on a benchmark whose videos it was trained on is measured on memory, and nothing in a
corpus says so: this is the check a researcher runs before trusting a score. Videos are matched by their
upstream ids (:mod:`streamo_data.core.video_identity`), so a copy under another folder still counts. The
released layout has no splits: all of it is training data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streamo_data.core.video_identity import identity_keys, video_stem
from streamo_data.corpus.benchmarks import BenchmarkFile
from streamo_data.formats.raw_records import RawInputError, open_raw_records
from streamo_data.reference.rules import reference_video_path
from streamo_data.sources.recipes.streamo_release import release_files
from streamo_data.store.manifest import MANIFEST, read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import read_table

EXAMPLE_IDS = 20  # ids listed per row of the report; the counts hold them all


@dataclass
class SourceOverlap:
    """One corpus source and split: its benchmark videos (by corpus id) and the samples on them."""

    videos: set[str] = field(default_factory=set)
    samples: int = 0


@dataclass
class Overlap:
    """What one benchmark file shares with a corpus."""

    benchmark: str
    file: str
    benchmark_videos: int
    samples: int = 0  # of the corpus, all checked
    by_source: dict[tuple[str, str], SourceOverlap] = field(default_factory=lambda: defaultdict(SourceOverlap))
    by_task: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # task -> benchmark videos
    bad_files: list[str] = field(default_factory=list)  # of a released-layout corpus: unreadable, with why

    @property
    def train_samples(self) -> int:
        return sum(entry.samples for (_, split), entry in self.by_source.items() if split == "train")

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark, "file": self.file, "benchmark_videos": self.benchmark_videos,
            "corpus_samples": self.samples, "train_samples_overlapping": self.train_samples,
            "bad_files": self.bad_files,
            "by_benchmark_task": {task: {"videos": len(names), "ids": sorted(names)}
                                  for task, names in sorted(self.by_task.items())},
            "by_corpus_source": [{"source": source, "split": split, "videos": len(entry.videos),
                                  "samples": entry.samples, "ids": sorted(entry.videos)}
                                 for (source, split), entry in sorted(self.by_source.items())],
        }


def corpus_rows(target: AnyPath, bad_files: list[str]) -> Iterator[tuple[str, str, str]]:
    """(source, split, video path or name) of every sample: our release by its manifest, else the released
    raw layout (task folders of JSON record lists), where a file that cannot be read (or breaks off half
    way) goes to ``bad_files`` with its reason and the rest is still checked, as `streamo audit` does."""
    if (target / MANIFEST).exists():
        for shard in read_manifest(target).shards:
            table = read_table(target / shard.path, columns=["source", "video_path"])
            for source, path in zip(table["source"].to_pylist(), table["video_path"].to_pylist(), strict=True):
                yield source, shard.split, path
        return
    for _, file in release_files(target):
        try:
            for record in open_raw_records(file).records:
                if isinstance(record, dict):
                    name = reference_video_path(record) or record.get("video_name") or ""
                    yield str(record.get("source") or "unknown"), "train", str(name)
        except RawInputError as error:
            bad_files.append(str(error))


def find_overlap(target: AnyPath, benchmark: BenchmarkFile) -> Overlap:
    index = benchmark.key_index()
    overlap = Overlap(benchmark=benchmark.benchmark, file=str(benchmark.path), benchmark_videos=len(benchmark.names()))
    for source, split, name in corpus_rows(target, overlap.bad_files):
        overlap.samples += 1
        matches = [video for key in identity_keys(name) for video in index.get(key, ())]
        if not matches:
            continue
        entry = overlap.by_source[(source, split)]
        entry.videos.add(video_stem(name))
        entry.samples += 1
        for video in matches:
            overlap.by_task[video.task or "(all)"].add(video.name)
    return overlap
