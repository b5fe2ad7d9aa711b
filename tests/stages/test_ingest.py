"""Video discovery on real folders: every container extension, symlinked folders (loops included),
dangling links as error rows; and a source's video name finding its file whatever the container."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from streamo_data.core.errors import UserError
from streamo_data.core.schema import VideoStatus
from streamo_data.runtime.runner import Executor
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.tables import iter_rows
from streamo_data.store.workdir import VIDEOS
from streamo_data.video.probe import find_videos
from tests.conftest import write_video

# The containers that decord / PyAV / OpenCV read; a copy of one MP4 under each name is still a
# readable video (FFmpeg probes the content), so every one must also come out of ingest as ``ok``.
EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".3g2",
              ".mts", ".m2ts", ".ts", ".ogv")


def ingest_rows(video_dir: Path, work: Path) -> dict[str, dict]:
    run_ingest(video_dir, work, 1.0, Executor(kind="local"))
    return {row["path"]: row for row in iter_rows(work / VIDEOS)}


def test_ingest_finds_every_container_extension(tmp_path: Path) -> None:
    source = write_video(tmp_path / "source.mp4", num_frames=30, fps=10)
    videos = tmp_path / "videos"
    for extension in EXTENSIONS:
        (videos / "sub").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, videos / "sub" / f"clip{extension.upper() if extension == '.wmv' else extension}")
    shutil.copyfile(source, videos / "didemo_style.")  # DiDeMo names some files with a bare trailing dot
    (videos / "notes.txt").write_text("not a video")
    rows = ingest_rows(videos, tmp_path / "work")
    expected = {f"sub/clip{e.upper() if e == '.wmv' else e}" for e in EXTENSIONS} | {"didemo_style."}
    assert set(rows) == expected
    assert {path: row["status"] for path, row in rows.items() if row["status"] != VideoStatus.OK} == {}


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    elsewhere = tmp_path / "other_disk"
    write_video(elsewhere / "linked.mp4", num_frames=20, fps=10)
    videos = tmp_path / "videos"
    write_video(videos / "real" / "a.mp4", num_frames=20, fps=10)
    (videos / "from_other_disk").symlink_to(elsewhere, target_is_directory=True)
    (videos / "real" / "loop").symlink_to(videos, target_is_directory=True)  # back up the tree
    (elsewhere / "back").symlink_to(elsewhere, target_is_directory=True)  # a loop outside the tree
    (videos / "alias_of_real").symlink_to(videos / "real", target_is_directory=True)  # same folder twice
    assert find_videos(videos) == ["from_other_disk/linked.mp4", "real/a.mp4"]
    rows = ingest_rows(videos, tmp_path / "work")
    assert {p: r["status"] for p, r in rows.items()} == {"from_other_disk/linked.mp4": "ok", "real/a.mp4": "ok"}


def test_a_dangling_symlink_is_an_error_row_naming_it(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", num_frames=20, fps=10)
    (videos / "gone.mp4").symlink_to(tmp_path / "unmounted" / "gone.mp4")
    (videos / "no_extension_link").symlink_to(tmp_path / "unmounted" / "clip.mkv")  # the target names a video
    (videos / "self.mp4").symlink_to(videos / "self.mp4")  # a link to itself
    rows = ingest_rows(videos, tmp_path / "work")
    assert rows["good.mp4"]["status"] == "ok"
    for path in ("gone.mp4", "no_extension_link"):
        assert rows[path]["status"] == "error"
        assert rows[path]["error"].startswith("dangling symlink: points to '")
        assert "unmounted" in rows[path]["error"]
    assert rows["self.mp4"]["status"] == "error" and rows["self.mp4"]["error"].startswith("symlink loop")


DIDEMO_NAMES = ("12090392@N02_13482799053_87ef417396.3gp", "7874318@N05_3211290347_ae39a50429.wmv",
                "phone.3g2", "camcorder.mts", "bluray.m2ts", "bare_dot.", "reencoded.3gp")


def didemo_annotations(tmp_path: Path) -> Path:
    records = [{"video": name, "times": [[1, 1]], "description": f"something in {name}", "annotation_id": k}
               for k, name in enumerate(DIDEMO_NAMES)]
    path = tmp_path / "didemo_train.json"
    path.write_text(json.dumps(records))
    return path


def test_didemo_names_find_their_files_whatever_the_container(tmp_path: Path) -> None:
    source = write_video(tmp_path / "source.mp4", num_frames=120, fps=10)
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in DIDEMO_NAMES[:-1]:
        shutil.copyfile(source, videos / name)
    shutil.copyfile(source, videos / "reencoded.mp4")  # the source says .3gp, the folder holds an MP4
    report = run_recipe(RECIPES["didemo"](), didemo_annotations(tmp_path), tmp_path / "out", videos=videos)
    assert dict(report.skipped) == {} and report.events == len(DIDEMO_NAMES)
    paths = sorted(row["path"] for row in iter_rows(tmp_path / "out" / "videos.parquet"))
    assert paths == sorted([*DIDEMO_NAMES[:-1], "reencoded.mp4"])


def test_didemo_names_keep_their_container_without_a_folder(tmp_path: Path) -> None:
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({name: 30.0 for name in DIDEMO_NAMES}))
    report = run_recipe(RECIPES["didemo"](), didemo_annotations(tmp_path), tmp_path / "out", videos=durations)
    assert dict(report.skipped) == {}
    paths = sorted(row["path"] for row in iter_rows(tmp_path / "out" / "videos.parquet"))
    assert paths == sorted(DIDEMO_NAMES)  # never x.3gp.mp4


def test_a_name_two_files_share_is_not_guessed(tmp_path: Path) -> None:
    source = write_video(tmp_path / "source.mp4", num_frames=120, fps=10)
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("reencoded.mp4", "reencoded.webm"):
        shutil.copyfile(source, videos / name)
    annotations = tmp_path / "train_data.json"
    annotations.write_text(json.dumps([{"video": "reencoded.3gp", "times": [[0, 0]], "description": "x"}]))
    with pytest.raises(UserError, match="unknown video"):  # its only line skipped: nothing is written
        run_recipe(RECIPES["didemo"](), annotations, tmp_path / "out", videos=videos)
    assert not (tmp_path / "out" / "events.parquet").exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_recipe_folder_catalogue_follows_symlinked_folders(tmp_path: Path) -> None:
    elsewhere = tmp_path / "disk2"
    write_video(elsewhere / "camcorder.mts", num_frames=120, fps=10)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "disk2").symlink_to(elsewhere, target_is_directory=True)
    annotations = tmp_path / "train_data.json"
    annotations.write_text(json.dumps([{"video": "camcorder.mts", "times": [[0, 0]], "description": "x"}]))
    report = run_recipe(RECIPES["didemo"](), annotations, tmp_path / "out", videos=videos)
    assert report.events == 1
    assert [row["path"] for row in iter_rows(tmp_path / "out" / "videos.parquet")] == ["disk2/camcorder.mts"]


def test_a_rerun_probes_error_rows_again(tmp_path: Path) -> None:
    """An error row is not finished work: once the link's disk is mounted, a plain rerun finds the video."""
    videos = tmp_path / "videos"
    videos.mkdir()
    target = tmp_path / "unmounted" / "late.mp4"
    (videos / "late.mp4").symlink_to(target)
    write_video(videos / "early.mp4", num_frames=20, fps=10)
    assert ingest_rows(videos, tmp_path / "work")["late.mp4"]["status"] == "error"
    write_video(target, num_frames=20, fps=10)
    summary = run_ingest(videos, tmp_path / "work", 1.0, Executor(kind="local"))
    assert (summary.done, summary.reused) == (1, 1)
    rows = {row["path"]: row for row in iter_rows(tmp_path / "work" / VIDEOS)}
    assert rows["late.mp4"]["status"] == "ok" and rows["early.mp4"]["status"] == "ok"
