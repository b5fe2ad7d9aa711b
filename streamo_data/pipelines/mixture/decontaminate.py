"""Decontamination, between the sources and the plan: no video of a listed benchmark reaches any split.

Streaming assistants are scored on benchmarks cut from the same public datasets a corpus is built from
(OVO-Bench takes COIN test and YouCook2 validation videos, and Charades videos through STAR), so a corpus
that trains on a benchmark video makes its score a measure of memory. Each benchmark file of the config's
``decontaminate:`` list is read in its published format (:mod:`streamo_data.corpus.benchmarks`); a corpus
video is a benchmark video when their upstream ids meet (:mod:`streamo_data.core.video_identity`), never
by path alone. The verdict is written once to ``decontamination.json`` in the work dir and enters the
plan's stamp; the plan and the build passes skip those videos, and the plan counts the candidates they
would have given, per benchmark and source, for the build report and the dataset card.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict

from streamo_data.core.video_identity import identity_keys
from streamo_data.corpus.benchmarks import read_benchmark
from streamo_data.pipelines.mixture.config import MixtureConfig
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath, location
from streamo_data.store.tables import read_table

DECONTAMINATION = "decontamination.json"


class Contamination(BaseModel):
    """Which corpus videos are benchmark videos (video id -> the benchmarks that use it), and per benchmark
    the file it came from and the corpus videos it removes by source."""

    model_config = ConfigDict(extra="forbid")

    videos: dict[str, list[str]] = {}
    benchmarks: dict[str, dict[str, Any]] = {}

    def in_range(self, low: str, high: str) -> dict[str, list[str]]:
        return {video: names for video, names in self.videos.items() if low <= video <= high}


def find_contaminated(config: MixtureConfig, source_dirs: list[str]) -> Contamination:
    """Every corpus video whose upstream id a benchmark of ``config.decontaminate`` names."""
    contamination = Contamination()
    if not config.decontaminate:
        return contamination
    index: dict[str, set[str]] = defaultdict(set)  # identity key -> benchmarks
    for path in config.decontaminate:
        benchmark = read_benchmark(path)
        # two files of one benchmark (StreamingBench's real and omni sets) each keep their own report
        name = benchmark.benchmark if benchmark.benchmark not in contamination.benchmarks else \
            f"{benchmark.benchmark}:{path.name}"
        contamination.benchmarks[name] = {
            "file": path.name, "format": benchmark.format, "benchmark_videos": len(benchmark.names()),
            "skipped_entries": dict(benchmark.skipped), "corpus_videos": {}}
        for key in benchmark.key_index():
            index[key].add(name)
    for folder in source_dirs:
        source = location(folder).name
        table = read_table(location(folder) / "videos.parquet", columns=["video_id", "path"])
        for video_id, path in zip(table["video_id"].to_pylist(), table["path"].to_pylist(), strict=True):
            names = sorted({name for key in identity_keys(path) for name in index.get(key, ())})
            if not names:
                continue
            contamination.videos[video_id] = sorted(set(contamination.videos.get(video_id, [])) | set(names))
            for name in names:
                by_source = contamination.benchmarks[name]["corpus_videos"]
                by_source[source] = by_source.get(source, 0) + 1
    return contamination


def save(contamination: Contamination, work_dir: AnyPath) -> None:
    write_text_atomic(work_dir / DECONTAMINATION, json.dumps(contamination.model_dump(), indent=1, sort_keys=True))
