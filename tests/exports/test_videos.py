"""`streamo videos`: on a real release with real files, each video's status under a video root, the share of
each task trainable, the list a downloader takes; and `export frames` and training leaving out (and
counting) samples whose video is unusable, by the same rule the report counts with."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.exports.frames.export import FramesRequest, export_frames
from streamo_data.exports.video_check import SHORT_TOLERANCE_S, NeededVideo, check_release_videos
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.store.workdir import SAMPLES
from streamo_data.train.data import SKIP_MISSING, SKIP_SHORT, SKIP_UNREADABLE, ShortVideo, load_examples
from streamo_data.train.features import FeatureStore
from tests.conftest import built_work_dir, write_video


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos_release")
    work = built_work_dir(sample_videos, root / "work", ["temporal_grounding", "dense_captioning"])
    write_release(work / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def spread(video: NeededVideo) -> float:
    times = [latest for _, latest in video.sample_times]
    return max(times) - min(times)


def spoiled_root(sample_videos: Path, release: Path, tmp_path: Path) -> tuple[Path, dict[str, str], float]:
    """A copy of the videos with one missing, one empty, one garbage, one cut to half a second (shorter than
    all its samples annotate) and one cut between its samples' latest times (it serves some of them); the
    last one's new length."""
    root = tmp_path / "videos"
    shutil.copytree(sample_videos, root)
    needed = check_release_videos(release, None).videos
    assert len(needed) >= 5
    missing, empty, garbage, short = (video.path for video in needed[:4])
    partial = max(needed[4:], key=spread)
    times = [latest for _, latest in partial.sample_times]
    cut = (min(times) + max(times)) / 2
    assert min(times) + SHORT_TOLERANCE_S < cut < max(times) - SHORT_TOLERANCE_S
    (root / missing).unlink()
    (root / empty).write_bytes(b"")
    (root / garbage).write_bytes(b"\x00not a video\xff" * 100)
    write_video(root / short, 5, 10.0)
    write_video(root / partial.path, round(cut * 10), 10.0)
    return root, {missing: "missing", empty: "zero-byte", garbage: "unreadable", short: "too short",
                  partial.path: "too short"}, round(cut * 10) / 10


def test_each_status_and_the_trainable_shares(sample_videos: Path, release: Path, tmp_path: Path) -> None:
    root, spoiled, cut = spoiled_root(sample_videos, release, tmp_path)
    report = check_release_videos(release, root)
    statuses = {video.path: video.status for video in report.videos}
    assert {path: statuses[path] for path in spoiled} == spoiled
    assert all(status == "present" for path, status in statuses.items() if path not in spoiled)
    assert all(v.latest_time_s <= v.expected_duration_s for v in report.videos)
    expected: dict[str, list[int]] = {}
    for video in report.videos:
        for task, latest in video.sample_times:
            usable = video.path not in spoiled or (video.found_duration_s == pytest.approx(cut)
                                                   and latest <= cut + SHORT_TOLERANCE_S)
            counts = expected.setdefault(task, [0, 0])
            counts[0] += usable
            counts[1] += 1
    assert report.trainable() == {task: (usable, total) for task, (usable, total) in expected.items()}
    assert 0 < sum(usable for usable, _ in report.trainable().values()) < sum(
        total for _, total in report.trainable().values())
    unlisted = check_release_videos(release, None)
    assert all(v.status is None for v in unlisted.videos) and not unlisted.unusable()


def test_the_cli_writes_the_list_a_downloader_takes_and_never_overwrites_it(sample_videos: Path, release: Path,
                                                                             tmp_path: Path) -> None:
    root, spoiled, _ = spoiled_root(sample_videos, release, tmp_path)
    listed, full = tmp_path / "to_fetch.jsonl", tmp_path / "report.json"
    args = ["videos", str(release), "--video-root", str(root), "--missing", str(listed), "--json", str(full)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output  # a report: exit 0 however much is missing
    assert "trainable" in result.output and "too short" in result.output and "zero-byte" in result.output
    rows = [json.loads(line) for line in listed.read_text().splitlines()]
    assert {row["path"]: row["status"] for row in rows} == spoiled
    assert all(row["id"] and row["expected_duration_s"] > 0 for row in rows)
    assert {row["id"] for row in rows} == {Path(path).stem for path in spoiled}
    written = json.loads(full.read_text())
    assert written["trainable"] == {task: {"usable": usable, "samples": total} for task, (usable, total)
                                    in check_release_videos(release, root).trainable().items()}
    assert {v["path"]: v["status"] for v in written["videos"] if v["path"] in spoiled} == spoiled
    before = listed.read_bytes()
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 2 and "--replace" in again.output
    assert listed.read_bytes() == before
    assert CliRunner().invoke(app, [*args, "--replace"]).exit_code == 0
    plain = tmp_path / "needed.txt"
    assert CliRunner().invoke(app, ["videos", str(release), "--missing", str(plain)]).exit_code == 0
    assert set(plain.read_text().split()) == {v.path for v in check_release_videos(release, None).videos}
    bad = CliRunner().invoke(app, ["videos", str(release), "--video-root", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "no such folder" in bad.output


def test_export_frames_gives_each_unusable_video_a_reason_and_counts_its_samples(
        sample_videos: Path, release: Path, tmp_path: Path) -> None:
    root, spoiled, _ = spoiled_root(sample_videos, release, tmp_path)
    summary = export_frames(FramesRequest(release, root, tmp_path / "frames"), executor=Executor(kind="local"))
    report = check_release_videos(release, root)
    assert {video for video, _ in summary.errors} == set(spoiled) and all(reason for _, reason in summary.errors)
    assert summary.videos["error"] == len(spoiled)
    on_spoiled = sum(sum(v.samples.values()) for v in report.videos if v.path in spoiled)
    assert sum(summary.excluded.values()) == on_spoiled
    assert summary.samples == sum(sum(v.samples.values()) for v in report.videos) - on_spoiled


def test_training_leaves_out_and_counts_what_the_report_calls_untrainable(sample_videos: Path, release: Path,
                                                                         tmp_path: Path) -> None:
    root, spoiled, _ = spoiled_root(sample_videos, release, tmp_path)
    store = FeatureStore(tmp_path / "features", root)
    skipped: Counter[str] = Counter()
    examples = load_examples(release, "train", store, 64, 64, cache_dir=str(tmp_path / "hf"), skipped=skipped)
    report = check_release_videos(release, root)
    trainable = report.trainable()
    assert len(examples) == sum(usable for usable, _ in trainable.values())
    assert Counter(e.task for e in examples) == {task: usable for task, (usable, _) in trainable.items() if usable}
    samples = {status: sum(sum(v.samples.values()) for v in report.videos if spoiled.get(v.path) == status)
               for status in ("missing", "zero-byte", "unreadable")}
    assert skipped[f"train: {SKIP_MISSING}"] == samples["missing"]
    assert skipped[f"train: {SKIP_UNREADABLE}"] == samples["zero-byte"] + samples["unreadable"]
    short = sum(sum(v.samples.values()) - sum(v.trainable_samples().values()) for v in report.videos
                if v.status == "too short")
    assert skipped[f"train: {SKIP_SHORT}"] == short > 0
    for video in report.videos:  # the others restored: only the half-served video is left spoiled
        if video.path in spoiled and not video.trainable_samples():
            shutil.copy(sample_videos / video.path, root / video.path)
    with pytest.raises(ShortVideo, match="annotates up to"):  # without a tally (evaluation) it is an error
        load_examples(release, "train", FeatureStore(tmp_path / "features2", root), 64, 64,
                      cache_dir=str(tmp_path / "hf"))


def test_the_train_command_reports_what_it_left_out(sample_videos: Path, release: Path, tmp_path: Path) -> None:
    root, _, _ = spoiled_root(sample_videos, release, tmp_path)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(release), "--out", str(run), "--video-root", str(root),
                                      "--epochs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    skipped = json.loads((run / "skipped.json").read_text())
    assert set(skipped) == {f"train: {reason}" for reason in (SKIP_MISSING, SKIP_UNREADABLE, SKIP_SHORT)}
    for reason, count in skipped.items():
        assert f"skipped {count} samples: {reason}" in " ".join(result.output.split())


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
