"""`streamo videos`: on a real release with real files, each video's status under a video root, the share of
each task trainable, the list a downloader takes; and training leaving out (and counting) samples whose
video is unusable."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.exports.video_check import check_release_videos
from streamo_data.release.write import write_release
from streamo_data.store.workdir import SAMPLES
from streamo_data.train.data import SKIP_MISSING, SKIP_UNREADABLE, load_examples
from streamo_data.train.features import FeatureStore
from tests.conftest import built_work_dir, write_video


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos_release")
    work = built_work_dir(sample_videos, root / "work", ["temporal_grounding", "dense_captioning"])
    write_release(work / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def spoiled_root(sample_videos: Path, release: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the videos with one missing, one empty, one garbage and one cut short."""
    root = tmp_path / "videos"
    shutil.copytree(sample_videos, root)
    needed = check_release_videos(release, None).videos
    assert len(needed) >= 4
    missing, empty, garbage, short = (video.path for video in needed[:4])
    (root / missing).unlink()
    (root / empty).write_bytes(b"")
    (root / garbage).write_bytes(b"\x00not a video\xff" * 100)
    write_video(root / short, 5, 10.0)  # half a second, shorter than what its samples annotate
    return root, {missing: "missing", empty: "zero-byte", garbage: "unreadable", short: "too short"}


def test_each_status_and_the_trainable_shares(sample_videos: Path, release: Path, tmp_path: Path) -> None:
    root, spoiled = spoiled_root(sample_videos, release, tmp_path)
    report = check_release_videos(release, root)
    statuses = {video.path: video.status for video in report.videos}
    assert {path: statuses[path] for path in spoiled} == spoiled
    assert all(status == "present" for path, status in statuses.items() if path not in spoiled)
    for task, (usable, total) in report.trainable().items():
        expected = sum(v.samples[task] for v in report.videos if v.path not in spoiled)
        assert (usable, total) == (expected, sum(v.samples[task] for v in report.videos)), task
    assert all(v.latest_time_s <= v.expected_duration_s for v in report.videos)


def test_the_cli_writes_the_list_a_downloader_takes_and_never_overwrites_it(sample_videos: Path, release: Path,
                                                                             tmp_path: Path) -> None:
    root, spoiled = spoiled_root(sample_videos, release, tmp_path)
    listed = tmp_path / "to_fetch.jsonl"
    args = ["videos", str(release), "--video-root", str(root), "--missing", str(listed)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "trainable" in result.output and "too short" in result.output
    rows = [json.loads(line) for line in listed.read_text().splitlines()]
    assert {row["path"]: row["status"] for row in rows} == spoiled
    assert all(row["id"] and row["expected_duration_s"] > 0 for row in rows)
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 2 and "--replace" in again.output
    plain = tmp_path / "needed.txt"
    assert CliRunner().invoke(app, ["videos", str(release), "--missing", str(plain)]).exit_code == 0
    assert set(plain.read_text().split()) == {v.path for v in check_release_videos(release, None).videos}


def test_training_leaves_out_and_counts_samples_on_unusable_videos(sample_videos: Path, release: Path,
                                                                  tmp_path: Path) -> None:
    root, spoiled = spoiled_root(sample_videos, release, tmp_path)
    store = FeatureStore(tmp_path / "features", root)
    skipped: Counter[str] = Counter()
    examples = load_examples(release, "train", store, 64, 64, cache_dir=str(tmp_path / "hf"), skipped=skipped)
    report = check_release_videos(release, root)
    # a too-short file still decodes: the baseline pads it with its last frame, so it is trained on
    unusable = {path for path, status in spoiled.items() if status in ("missing", "zero-byte", "unreadable")}
    lost = sum(sum(v.samples.values()) for v in report.videos if v.path in unusable)
    missing = sum(sum(v.samples.values()) for v in report.videos if spoiled.get(v.path) == "missing")
    assert sum(skipped.values()) == lost
    assert skipped[f"train: {SKIP_MISSING}"] == missing
    assert skipped[f"train: {SKIP_UNREADABLE}"] == lost - missing
    assert len(examples) == sum(sum(v.samples.values()) for v in report.videos) - lost


def test_a_mixture_config_lists_its_sources_videos_before_any_build(tmp_path: Path) -> None:
    from streamo_data.sources.sample_sources import write_mixture

    root = Path(__file__).resolve().parents[2]
    config = write_mixture(tmp_path / "data", 0.0005, root / "pipelines" / "public_annotations.yaml")
    listed = tmp_path / "to_fetch.jsonl"
    result = CliRunner().invoke(app, ["videos", str(config), "--work", str(tmp_path / "work"), "--missing",
                                      str(listed)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in listed.read_text().splitlines()]
    assert {row["source"] for row in rows} == {"activitynet", "charades", "qvhighlights", "youcook2", "coin",
                                                "didemo"}
    assert not (tmp_path / "work" / "plan.json").exists()  # the recipes ran; nothing was built
