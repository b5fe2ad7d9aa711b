"""`streamo show`: a sample's timeline, checked by its pixels: every frame's state bar has its state's
colour at the place the layout gives, in the PNG and in a real headless Chromium's rendering of the HTML."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.align import State
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.plots.colors import BLANK_HEX, STATE_RGB, rgb
from streamo_data.plots.timeline import Layout, text_lines, turns_of
from streamo_data.release.write import write_release
from streamo_data.store.tables import to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for
from tests.conftest import write_video

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


def caption_sample(name: str, num_frames: int) -> StreamingSample:
    return StreamingSample.create(
        task="dense_captioning", source="generic", video_id=video_id_for(name), video_path=name,
        duration_s=float(num_frames), fps=1.0, num_frames=num_frames,
        questions=[QuestionTurn(content="Describe each event.", time=0)],
        responses=[ResponseTurn(content="A grey square brightens.", st_time=3, end_time=8),
                   ResponseTurn(content="It fades.", st_time=36, end_time=40)])


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, StreamingSample]:
    root = tmp_path_factory.mktemp("show")
    write_video(root / "videos" / "long.mp4", 450, 10.0)  # 45 s: two rows of frames
    write_video(root / "videos" / "short.mp4", 120, 10.0)
    sample = caption_sample("long.mp4", 45)
    others = [StreamingSample.create(
        task="offline_qa", source="generic", video_id=video_id_for("short.mp4"), video_path="short.mp4",
        duration_s=12.0, fps=1.0, num_frames=12, questions=[QuestionTurn(content=f"Q{k}?", time=0)],
        responses=[ResponseTurn(content=f"A{k}.", time=2 + k)]) for k in range(4)]
    write_rows(root / "work" / SAMPLES, StreamingSample, [to_row(s) for s in [sample, *others]])
    write_release(root / "work" / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release", root / "videos", sample


def assert_bars(picture: np.ndarray, layout: Layout, sample: StreamingSample) -> None:
    """Each frame's bar, left of its mark, is its state's colour (RGB picture, top-left origin)."""
    for frame, state in enumerate(sample.states):
        x0, y0, x1, y1 = layout.bar(frame)
        patch = picture[y0 + 2:y1 - 2, x0 + 1:x0 + 5].reshape(-1, 3).astype(int)
        expected = np.array(STATE_RGB[State(state)])
        assert np.abs(patch - expected).max() <= 3, (frame, state, patch[0])


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_png_colours_every_frame_by_its_state_and_shows_the_frames(release, tmp_path: Path) -> None:
    release_dir, videos, sample = release
    assert sample.states.count(State.STANDBY) >= 8 and sample.states.count(State.RESPONSE) == 2
    out = tmp_path / "t.png"
    result = CliRunner().invoke(app, ["show", str(release_dir), sample.sample_id, "--video-root", str(videos),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    picture, layout = read_rgb(out), Layout(sample.num_frames)
    assert picture.shape[:2] == (layout.height(len(text_lines(sample, turns_of(sample)))), layout.width)
    assert layout.rows == 2
    assert_bars(picture, layout, sample)
    for frame in range(sample.num_frames):  # write_video's native frame n is grey (7 n) % 255; frame i is n = 10 i
        left, top = layout.cell(frame)
        grey = picture[top + 4:top + 20, left + 6:left + 42].astype(int).mean()
        assert abs(grey - (frame * 10 * 7) % 255) < 12, frame


def test_png_without_videos_has_blank_cells(release, tmp_path: Path) -> None:
    release_dir, _, sample = release
    out = tmp_path / "t.png"
    assert CliRunner().invoke(app, ["show", str(release_dir), sample.sample_id, "--out", str(out)]).exit_code == 0
    picture, layout = read_rgb(out), Layout(sample.num_frames)
    assert_bars(picture, layout, sample)
    left, top = layout.cell(5)
    assert np.abs(picture[top + 4:top + 30, left + 4:left + 44].astype(int) - np.array(rgb(BLANK_HEX))).max() <= 2


def test_html_is_self_contained_and_renders_the_same_cells_in_chromium(release, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("STREAMO_REQUIRE_BROWSER"):
            pytest.fail("STREAMO_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no chromium here (CI installs Debian's package and sets STREAMO_REQUIRE_BROWSER)")
    release_dir, videos, sample = release
    page = tmp_path / "t.html"
    result = CliRunner().invoke(app, ["show", str(release_dir), sample.sample_id, "--video-root", str(videos),
                                      "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and not re.search(r"(src|href)=\"(?!data:)", text)  # nothing to fetch
    assert text.count("data:image/jpeg;base64,") == sample.num_frames
    layout = Layout(sample.num_frames)
    height = layout.height(len(text_lines(sample, turns_of(sample))))
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    f"--window-size={layout.width},{height}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    picture = read_rgb(shot)
    assert picture.shape[:2] == (height, layout.width)
    assert_bars(picture, layout, sample)
    left, top = layout.cell(10)
    assert np.abs(picture[top + 4:top + 30, left + 4:left + 44].astype(int) - np.array(rgb(BLANK_HEX))).mean() > 20


def test_random_draws_the_same_samples_for_a_seed_and_keeps_to_its_task(release, tmp_path: Path) -> None:
    release_dir, _, _ = release
    runner = CliRunner()
    for folder in ("a", "b"):
        result = runner.invoke(app, ["show", str(release_dir), "--random", "3", "--task", "offline_qa", "--seed", "1",
                                     "--format", "html", "--out", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 3 and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all("offline_qa" in (tmp_path / "a" / n).read_text() for n in names)


def test_bad_requests_are_one_line(release, tmp_path: Path) -> None:
    release_dir, _, sample = release
    runner = CliRunner()
    for args, message in ((["nope"], "no sample 'nope'"), ([sample.sample_id, "--out", str(tmp_path / "x.gif")],
                                                            ".png or .html"),
                          (["--random", "2", "--task", "narration"], "--task 'narration'"), ([], "SAMPLE_ID")):
        result = runner.invoke(app, ["show", str(release_dir), *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, args
