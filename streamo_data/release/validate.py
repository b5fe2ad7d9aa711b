"""Re-checking a release row by row against the models it was written with, plus what no single row
can show: shard checksums, unreadable shards, Parquet files the manifest does not list (`load_dataset`
reads them all the same), duplicate sample ids, and videos leaking across splits."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pydantic import ValidationError

from streamo_data.core.errors import UserError
from streamo_data.core.reasons import reason_key, validation_messages
from streamo_data.core.schema import StreamingSample
from streamo_data.store.io import sha256_of
from streamo_data.store.manifest import pending_shards, read_manifest
from streamo_data.store.storage import AnyPath, relative_name
from streamo_data.store.tables import iter_rows


@dataclass
class ValidationReport:
    rows: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.invalid

    def add(self, reason: str, example: str) -> None:
        self.invalid[reason] += 1
        self.examples.setdefault(reason, example)


def validate_release(release_dir: AnyPath) -> ValidationReport:
    report = ValidationReport()
    manifest = read_manifest(release_dir)
    seen: set[str] = set()
    splits_of_video: dict[str, set[str]] = defaultdict(set)
    for shard in manifest.shards:
        path = release_dir / shard.path
        if not path.exists():
            report.add("shard listed in manifest.json is missing", shard.path)
            continue
        if sha256_of(path) != shard.sha256:
            report.add("shard checksum differs from manifest.json", shard.path)
        count = 0
        try:
            for row in iter_rows(path):
                count += 1
                report.rows += 1
                where = f"{shard.path} row {count - 1} (sample {row.get('sample_id')})"
                try:
                    sample = StreamingSample.model_validate(row)
                except ValidationError as error:
                    for message in validation_messages(error):
                        report.add(reason_key(message), f"{where}: {message}")
                    continue
                if sample.task != shard.task:
                    report.add("row's task differs from its shard's task", where)
                if sample.sample_id in seen:
                    report.add("duplicate sample_id", where)
                seen.add(sample.sample_id)
                splits_of_video[sample.video_id].add(shard.split)
        except UserError as error:
            report.add("shard is not a readable Parquet file", f"{shard.path}: {error}")
            continue
        if count != shard.num_rows:
            report.add("shard row count differs from manifest.json", shard.path)
    for extra in unlisted_files(release_dir, {shard.path for shard in manifest.shards}):
        report.add("Parquet file in data/ not listed in manifest.json", extra)
    for video_id, splits in splits_of_video.items():
        if len(splits) > 1:
            report.add("video appears in more than one split", video_id)
    return report


def unlisted_files(release_dir: AnyPath, listed: set[str]) -> list[str]:
    """Parquet files under ``data/`` that the manifest does not name (anyone reading ``data/*/*.parquet``
    would load them), except the shards of a re-release in progress or killed, which ``.pending.json``
    names: the next release removes them, and the card, naming its files one by one, never loads them."""
    data = release_dir / "data"
    found = (relative_name(p, release_dir) for p in data.rglob("*.parquet")) if data.is_dir() else ()
    pending = pending_shards(release_dir)
    return sorted(path for path in found if path not in listed and path not in pending)
