"""The build's output is pinned: a seeded synthetic mixture of every task gives exactly the shards recorded in
``tests/fixtures/pinned_build.json``. Speed work on the build (labels as arrays, one alignment per sample, fewer
Ray batches) must keep every row; a change that means to change the output re-pins with
``python tests/pipelines/test_build_bytes.py`` and says so in its commit.

The file checksums hold for the pyarrow version that wrote them (Parquet records its writer); the rows'
digests hold for any."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from streamo_data.pipelines.mixture import MixtureConfig, run_mixture
from streamo_data.release.card import card_plots, dataset_card
from streamo_data.release.stats import release_stats
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_sources import write_mixture
from streamo_data.store.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / "tests" / "fixtures" / "pinned_build.json"
FRACTION = 0.004  # 1,860 samples over the six tasks of the public mixture, both splits


def build_release(folder: Path) -> Path:
    config = write_mixture(folder / "inputs", FRACTION, ROOT / "pipelines" / "public_annotations.yaml",
                           videos_per_batch=150)
    release = folder / "release"
    run_mixture(MixtureConfig.load(config), folder / "work", release, Executor(kind="local"))
    return release


def build(folder: Path) -> dict[str, Any]:
    """The pinned build's shards: path, rows, file sha256 and a digest of the rows themselves."""
    release = build_release(folder)
    shards = []
    for shard in read_manifest(release).shards:
        rows = pq.read_table(release / shard.path).to_pylist()
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        shards.append({"path": shard.path, "num_rows": shard.num_rows, "sha256": shard.sha256, "rows": digest})
    return {"pyarrow": pa.__version__, "shards": shards}


def test_a_seeded_build_gives_the_pinned_rows_and_bytes(tmp_path: Path) -> None:
    pinned, built = json.loads(PINNED.read_text()), build(tmp_path)
    assert [(s["path"], s["num_rows"], s["rows"]) for s in built["shards"]] == \
        [(s["path"], s["num_rows"], s["rows"]) for s in pinned["shards"]]
    if built["pyarrow"] == pinned["pyarrow"]:
        assert [s["sha256"] for s in built["shards"]] == [s["sha256"] for s in pinned["shards"]]


def test_the_card_counted_while_writing_is_the_card_of_the_shards_read_back(tmp_path: Path) -> None:
    """A build counts its release's composition from the tables it hands the shard writer; the card must
    say exactly what reading the shards back says."""
    release = build_release(tmp_path)
    manifest = read_manifest(release)
    stats = release_stats(release)
    assert stats["samples"] == manifest.num_samples and stats["frames"] > stats["samples"]
    card = (release / "README.md").read_text()
    assert card == dataset_card(manifest, stats, card_plots(release, manifest, stats))


def test_the_plans_chosen_videos_only_skip_listing(tmp_path: Path) -> None:
    """The plan names, per task, the videos a taken candidate comes from, and the build lists no other
    video's candidates; a plan without that list (an earlier version's) lists every video and must build
    the same shards."""
    release = build_release(tmp_path)
    work = tmp_path / "work"
    plan = json.loads((work / "plan.json").read_text())
    assert set(plan["chosen"]) == set(plan["thresholds"]) and all(plan["chosen"].values())
    first = [(s.path, s.sha256) for s in read_manifest(release).shards]
    del plan["chosen"]
    (work / "plan.json").write_text(json.dumps(plan))
    for part in (work / "parts").iterdir():
        part.unlink()
    config = tmp_path / "inputs" / "mixture.yaml"
    run_mixture(MixtureConfig.load(config), work, tmp_path / "again", Executor(kind="local"))
    assert [(s.path, s.sha256) for s in read_manifest(tmp_path / "again").shards] == first


if __name__ == "__main__":  # re-pin: only for a change meant to change the output
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        PINNED.write_text(json.dumps(build(Path(work)), indent=1) + "\n")
    print(f"pinned {PINNED}", file=sys.stderr)
