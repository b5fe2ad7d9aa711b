"""`streamo export frames` never deletes what it did not make: a user's folder or file at a frame folder's
place, or under ``.partial/``, is refused and kept (with or without ``--replace``); and two exports into
one frames folder cannot run at once (a lock that a killed process does not leave held)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.exports.frames.export import FramesRequest, estimate_frames, export_frames
from streamo_data.exports.frames.layout import LOCK, PARTIAL
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.store.tables import to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for
from streamo_data.video.timing import Timing
from tests.conftest import write_video

LOCAL = Executor(kind="local")
NAMES = ("alpha.mp4", "beta.mp4", "gamma.mp4")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A release of three 3 s videos (one sample each, three frame turns) and their folder."""
    root = tmp_path_factory.mktemp("tiny")
    videos = root / "videos"
    rows = []
    for name in NAMES:
        write_video(videos / name, 30, 10.0)
        rows.append(to_row(StreamingSample.create(
            task="offline_qa", source="generic", video_id=video_id_for(name), video_path=name, duration_s=3.0,
            fps=1.0, num_frames=3, questions=[QuestionTurn(content="What is it?", time=0)],
            responses=[ResponseTurn(content="A clip.", time=1)])))
    write_rows(root / "work" / SAMPLES, StreamingSample, rows)
    write_release(root / "work" / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release", videos


def reference(tiny: tuple[Path, Path], out: Path, replace: bool = False) -> FramesRequest:
    release, videos = tiny
    return FramesRequest(release, videos, out, timing=Timing.REFERENCE, replace=replace)


def rows_of(out: Path) -> dict[str, dict]:
    return {row["video"]: row for row in map(json.loads, (out / "frames_videos.jsonl").open())}


@pytest.mark.parametrize("replace", [False, True])
def test_a_users_folder_or_file_at_a_frame_folders_place_is_refused_and_kept(tiny: tuple[Path, Path],
                                                                              tmp_path: Path, replace: bool) -> None:
    out = tmp_path / "frames"
    (out / "alpha_frames").mkdir(parents=True)
    (out / "alpha_frames" / "labels.txt").write_text("my labels")
    (out / "alpha_frames" / "frame_000000.jpg").write_bytes(b"my picture")
    (out / "beta_frames").write_text("a file of mine")
    summary = export_frames(reference(tiny, out, replace), executor=LOCAL)
    assert (out / "alpha_frames" / "labels.txt").read_text() == "my labels"
    assert (out / "alpha_frames" / "frame_000000.jpg").read_bytes() == b"my picture"
    assert (out / "beta_frames").read_text() == "a file of mine"
    assert summary.videos == {"written": 1, "error": 2} and summary.replaced == 0
    rows = rows_of(out)
    assert "labels.txt" in rows["alpha.mp4"]["reason"] and "alpha_frames" in rows["alpha.mp4"]["reason"]
    assert "is a file" in rows["beta.mp4"]["reason"]
    assert (out / "gamma_frames" / ".done").exists() and summary.samples == 1


def test_a_finished_folder_with_a_users_file_in_it_is_not_replaced(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """--replace rewrites frames made with other settings, but not a folder the user has put work into."""
    out = tmp_path / "frames"
    export_frames(reference(tiny, out), executor=LOCAL)
    (out / "alpha_frames" / "notes.txt").write_text("mine")
    release, videos = tiny
    png = FramesRequest(release, videos, out, timing=Timing.REFERENCE, image_format="png", replace=True)
    summary = export_frames(png, executor=LOCAL)
    assert summary.videos == {"written": 2, "error": 1}
    assert (out / "alpha_frames" / "notes.txt").read_text() == "mine"
    assert list((out / "alpha_frames").glob("frame_*.jpg"))  # its frames are left as they were
    assert list((out / "beta_frames").glob("frame_*.png")) and not list((out / "beta_frames").glob("*.jpg"))


def test_a_link_at_a_frame_folders_place_is_refused_and_its_target_kept(tiny: tuple[Path, Path],
                                                                         tmp_path: Path) -> None:
    out, mine = tmp_path / "frames", tmp_path / "mine"
    mine.mkdir()
    (mine / "frame_000000.jpg").write_bytes(b"not a frame of alpha")
    out.mkdir()
    (out / "alpha_frames").symlink_to(mine, target_is_directory=True)
    (out / "beta_frames").symlink_to(tmp_path / "nowhere")
    summary = export_frames(reference(tiny, out), executor=LOCAL)
    assert summary.videos == {"written": 1, "error": 2}
    assert (out / "alpha_frames").is_symlink() and (out / "beta_frames").is_symlink()
    assert os.listdir(mine) == ["frame_000000.jpg"]
    assert all("symbolic link" in rows_of(out)[name]["reason"] for name in ("alpha.mp4", "beta.mp4"))


def test_an_interrupted_frame_folder_is_still_replaced(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Frame files and nothing else, no marker (the reference killed mid-video): replaced as before."""
    out = tmp_path / "frames"
    (out / "alpha_frames").mkdir(parents=True)
    (out / "alpha_frames" / "frame_000000.jpg").write_bytes(b"half")
    summary = export_frames(reference(tiny, out), executor=LOCAL)
    assert summary.videos == {"written": 3} and summary.replaced == 1
    assert (out / "alpha_frames" / "frame_000000.jpg").read_bytes() != b"half"


def test_partial_keeps_what_the_exporter_did_not_put_there(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    partial = out / PARTIAL
    (partial / "mine").mkdir(parents=True)
    (partial / "mine" / "frame_000000.jpg").write_bytes(b"mine")
    (partial / "notes.txt").write_text("my notes")
    killed = partial / "alpha_frames.0123456789ab"  # as a killed export leaves a half-built folder
    killed.mkdir()
    (killed / "frame_000000.jpg").write_bytes(b"half")
    odd = partial / "beta_frames.0123456789ab"  # named like one, but holding something of the user's
    odd.mkdir()
    (odd / "keep.txt").write_text("keep")
    summary = export_frames(reference(tiny, out), executor=LOCAL)
    assert summary.videos == {"written": 3} and summary.cleared_partials == 1
    assert not killed.exists()
    assert (partial / "notes.txt").read_text() == "my notes"
    assert (partial / "mine" / "frame_000000.jpg").read_bytes() == b"mine"
    assert (odd / "keep.txt").read_text() == "keep"


def test_a_partial_that_is_a_file_is_refused_in_one_line(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    release, videos = tiny
    out = tmp_path / "frames"
    out.mkdir()
    (out / PARTIAL).write_text("mine")
    result = CliRunner().invoke(app, ["export", "frames", str(release), "--video-root", str(videos), "--out",
                                      str(out), "--executor", "local"])
    assert result.exit_code == 2, result.output
    assert PARTIAL in result.output and "Traceback" not in result.output
    assert (out / PARTIAL).read_text() == "mine" and not (out / "images.jsonl").exists()


def test_the_dry_run_reports_what_would_be_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    (out / "alpha_frames").mkdir(parents=True)
    (out / "alpha_frames" / "labels.txt").write_text("my labels")
    estimate = estimate_frames(reference(tiny, out), LOCAL)
    assert estimate.videos == {"would write": 2, "error": 1}
    (video, reason), = estimate.errors
    assert video == "alpha.mp4" and "labels.txt" in reason


def test_a_second_export_into_the_same_folder_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    release, videos = tiny
    out = tmp_path / "frames"
    out.mkdir()
    (out / PARTIAL / "alpha_frames.0123456789ab").mkdir(parents=True)  # the running export's half-built folder
    with FileLock(out / LOCK, timeout=0):  # as the first export holds it
        with pytest.raises(UserError, match="another export is writing into it"):
            export_frames(reference(tiny, out), executor=LOCAL)
        result = CliRunner().invoke(app, ["export", "frames", str(release), "--video-root", str(videos), "--out",
                                          str(out), "--timing", "reference", "--executor", "local"])
        assert result.exit_code == 2 and "another export" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert (out / PARTIAL / "alpha_frames.0123456789ab").is_dir()  # the first one's work is untouched
    assert not (out / "images.jsonl").exists()
    assert export_frames(reference(tiny, out), executor=LOCAL).videos == {"written": 3}  # released: runs


def test_a_lock_left_by_a_killed_export_does_not_block(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    out.mkdir()
    script = ("import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire();"
              " print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(out / LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError):
            export_frames(reference(tiny, out), executor=LOCAL)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK).exists()  # the file stays; the OS-level lock went with its process
    assert export_frames(reference(tiny, out), executor=LOCAL).videos == {"written": 3}
