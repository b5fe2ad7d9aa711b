"""Bad input to `streamo ingest`: one line naming the item and the reason, exit code 2, no traceback, and
nothing written over earlier work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamo_data.stages.ingest import run_ingest
from streamo_data.store.io import sha256_of
from streamo_data.store.tables import iter_rows
from tests.cli.bad_inputs.parts import FIXTURES, LOCAL, assert_one_line, invoke
from tests.conftest import write_video


@pytest.mark.parametrize("fps", ["0", "-1", "nan", "inf"])
def test_ingest_refuses_a_nonsense_fps(sample_videos: Path, tmp_path: Path, fps: str) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--fps", fps, "--executor", "local"),
                    "--fps", fps)
    assert not (tmp_path / "w").exists()


def test_ingest_refuses_an_unknown_backend(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--backend", "foo", "--executor",
                           "local"), "--backend", "foo")


def test_a_cpu_count_below_one_is_refused(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--num-cpus", "0"), "--num-cpus")


def test_ingest_from_another_folder_is_refused_unless_replace(work_copy: Path, sample_videos: Path,
                                                              tmp_path: Path) -> None:
    other = tmp_path / "other_videos"
    other.mkdir()
    shutil.copy(next(sample_videos.glob("*.mp4")), other / "clip.mp4")
    before = {name: sha256_of(work_copy / name) for name in ("videos.parquet", "events.parquet", "ingest.json")}
    assert_one_line(invoke("ingest", other, "--out", work_copy, "--executor", "local"), str(sample_videos.resolve()),
                    "--replace")
    assert before == {name: sha256_of(work_copy / name) for name in before}
    result = invoke("ingest", other, "--out", work_copy, "--executor", "local", "--replace")
    assert result.exit_code == 0, result.output
    assert [row["path"] for row in iter_rows(work_copy / "videos.parquet")] == ["clip.mp4"]
    assert "events" in result.output  # it says how many events now name videos it no longer has


def test_ingest_again_from_the_same_folder_is_allowed(work_copy: Path, sample_videos: Path) -> None:
    result = invoke("ingest", sample_videos, "--out", work_copy, "--executor", "local")
    assert result.exit_code == 0, result.output


def test_ingest_over_videos_written_by_a_recipe_is_refused(sample_videos: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    assert invoke("recipe", "youcook2", "--annotations", FIXTURES / "youcookii_annotations_trainval.json",
                  "--out", work).exit_code == 0
    before = sha256_of(work / "videos.parquet")
    assert_one_line(invoke("ingest", sample_videos, "--out", work, "--executor", "local"), "recipe", "--replace")
    assert sha256_of(work / "videos.parquet") == before


def test_ingest_of_a_folder_without_videos_writes_nothing(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", num_frames=30, fps=10)
    work = tmp_path / "work"
    run_ingest(videos, work, 1.0, LOCAL)
    before = sha256_of(work / "videos.parquet")
    (videos / "a.mp4").unlink()
    assert_one_line(invoke("ingest", videos, "--out", work, "--executor", "local"), "no video files found")
    assert sha256_of(work / "videos.parquet") == before


def test_a_video_gone_from_the_folder_stays_as_an_error_row(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4"):
        write_video(videos / name, num_frames=30, fps=10)
    work = tmp_path / "work"
    run_ingest(videos, work, 1.0, LOCAL)
    (videos / "b.mp4").unlink()
    run_ingest(videos, work, 1.0, LOCAL)
    rows = {row["path"]: row for row in iter_rows(work / "videos.parquet")}
    assert rows["a.mp4"]["status"] == "ok"
    assert rows["b.mp4"]["status"] == "error" and "no longer in" in rows["b.mp4"]["error"]

