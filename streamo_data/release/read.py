"""Reading a release back as validated samples, shard by shard as its manifest lists them (one shard's
rows in memory at a time), for every export."""

from __future__ import annotations

from collections.abc import Iterator

from streamo_data.core.schema import StreamingSample
from streamo_data.store.manifest import read_manifest
from streamo_data.store.storage import AnyPath
from streamo_data.store.tables import from_row, iter_rows


def iter_release_samples(release_dir: AnyPath, split: str | None = None) -> Iterator[StreamingSample]:
    for shard in read_manifest(release_dir).shards:
        if split is None or shard.split == split:
            for row in iter_rows(release_dir / shard.path):
                yield from_row(StreamingSample, row)
