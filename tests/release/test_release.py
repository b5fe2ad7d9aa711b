"""Releases: shard layout, atomic writes, splits by video, and `streamo validate` catching damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.release.validate import validate_release
from streamo_data.release.write import validation_videos, write_release
from streamo_data.runtime.runner import Executor
from streamo_data.store.manifest import read_manifest
from streamo_data.store.tables import to_table
from streamo_data.store.workdir import SAMPLES

LOCAL = Executor(kind="local")


def test_layout_shards_and_checksums(work_dir: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    manifest = write_release(work_dir / SAMPLES, release, rows_per_shard=3, validation_fraction=0.3)
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file())
    plots = ["samples_by_task_and_source", "task_shares", "state_shares", "video_lengths", "responses_per_sample"]
    plots += [f"example_{task}" for task in manifest.tasks]
    assert files == sorted(["README.md", "manifest.json"] + [s.path for s in manifest.shards]
                           + [f"assets/{name}.png" for name in plots])
    assert not list(release.rglob("*.tmp"))
    grounding_train = [s for s in manifest.shards if s.task == "temporal_grounding" and s.split == "train"]
    total = len(grounding_train)
    assert total >= 2 and [Path(s.path).name for s in grounding_train] == [
        f"train-{i:05d}-of-{total:05d}-{s.sha256[:16]}.parquet" for i, s in enumerate(grounding_train)]
    written = pq.read_table(work_dir / SAMPLES).num_rows
    assert sum(s.num_rows for s in manifest.shards) == manifest.num_samples == written
    assert validate_release(release).ok


def test_rewriting_a_release_removes_stale_shards(work_dir: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    write_release(work_dir / SAMPLES, release, rows_per_shard=2)
    many = len(list(release.rglob("*.parquet")))
    manifest = write_release(work_dir / SAMPLES, release, rows_per_shard=1000)
    assert len(list(release.rglob("*.parquet"))) == len(manifest.shards) < many
    assert validate_release(release).ok


def test_validation_split_is_by_video_and_independent_of_row_order() -> None:
    videos = {"grounding": {f"v{i}" for i in range(20)}, "captioning": {"v1", "v2"}}
    held = validation_videos(videos, 0.1, seed=0)
    assert held == validation_videos({k: set(sorted(v, reverse=True)) for k, v in videos.items()}, 0.1, seed=0)
    assert held & videos["captioning"] and held & videos["grounding"]
    assert validation_videos({"t": {"only"}}, 0.5, seed=0) == set()


def test_validate_counts_each_reason_and_exits_non_zero(work_dir: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    manifest = write_release(work_dir / SAMPLES, release, validation_fraction=0.0)
    shard = release / next(s.path for s in manifest.shards if s.task == "temporal_grounding")
    rows = pq.read_table(shard).to_pylist()
    rows[0]["states"] = ["silence"] * len(rows[0]["states"])  # labels no longer follow the turns
    rows[1]["responses"] = [{**rows[1]["responses"][0], "st_time": 99.0}]  # start after end
    rows[2]["sample_id"] = rows[3]["sample_id"]  # a forged id
    from streamo_data.core.schema import StreamingSample

    pq.write_table(to_table(StreamingSample, rows), shard)
    result = CliRunner().invoke(app, ["validate", str(release)])
    assert result.exit_code == 1
    for reason in ("states/answers disagree", "is after end_time", "not the hash of its content",
                   "shard checksum differs from manifest.json"):
        assert reason in result.output, result.output
    report = validate_release(release)
    assert sum(report.invalid.values()) >= 4


def test_a_missing_shard_is_reported(work_dir: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    write_release(work_dir / SAMPLES, release)
    victim = read_manifest(release).shards[0].path
    (release / victim).unlink()
    report = validate_release(release)
    assert report.invalid["shard listed in manifest.json is missing"] == 1


def test_release_of_an_unbuilt_work_dir_says_what_to_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["release", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "streamo build" in result.output
    shutil.rmtree(tmp_path / "r", ignore_errors=True)


def test_a_release_rebuilt_in_place_is_never_served_stale_by_the_datasets_cache(
    work_dir: Path, tmp_path: Path
) -> None:
    from datasets import load_dataset

    from streamo_data.core.schema import StreamingSample
    from streamo_data.store.tables import iter_rows, write_rows

    release, cache = tmp_path / "release", tmp_path / "hf-cache"
    rows = list(iter_rows(work_dir / SAMPLES))
    write_release(work_dir / SAMPLES, release, validation_fraction=0.0)
    before = load_dataset(str(release), "temporal_grounding", split="train", cache_dir=str(cache))

    # same tasks, same row counts, one answer changed by one letter: only the contents differ
    changed = StreamingSample.model_validate(rows[-1])
    first = changed.responses[0]
    edited = first.model_copy(update={"content": first.content[0].swapcase() + first.content[1:]})
    rebuilt = StreamingSample.create(**{**changed.model_dump(exclude={"sample_id", "states", "answers", "responses"}),
                                        "questions": changed.questions, "responses": [edited, *changed.responses[1:]]})
    modified = work_dir.parent / "modified.parquet"
    write_rows(modified, StreamingSample, [*rows[:-1], rebuilt.model_dump(mode="json")])
    write_release(modified, release, validation_fraction=0.0)
    after = load_dataset(str(release), "temporal_grounding", split="train", cache_dir=str(cache))
    assert before.num_rows == after.num_rows
    assert rebuilt.sample_id in after["sample_id"] and rebuilt.sample_id not in before["sample_id"]


def test_an_empty_build_is_refused_with_the_reason(tmp_path: Path) -> None:
    from streamo_data.core.schema import StreamingSample
    from streamo_data.store.tables import write_rows

    write_rows(tmp_path / "samples.parquet", StreamingSample, [])
    result = CliRunner().invoke(app, ["release", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "holds no samples" in result.output
