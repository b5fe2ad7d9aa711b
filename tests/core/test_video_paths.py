"""A video path names a file inside the videos folder it is relative to: recipes skip one that leaves it
(absolute, or up with ``..``), the models refuse it, and every reader of a release that holds one (export
frames, show, export stream-format) refuses in one line instead of reading a file the user never named."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.schema import StreamingSample, VideoRecord, leaves_root
from streamo_data.sources.recipes import RECIPES
from streamo_data.sources.recipes.run import run_recipe
from streamo_data.store.io import sha256_of
from streamo_data.store.tables import SAMPLE_FEATURES
from tests.conftest import write_video

OUTSIDE = ["../outside/secret.mp4", "/etc/secret.mp4", "a/../../secret.mp4", "./../secret.mp4"]
INSIDE = ["ok.mp4", "a/b/c.mp4", "a/../b.mp4", "..hidden.mp4", "x..y/z.mp4"]


@pytest.mark.parametrize("path", OUTSIDE)
def test_paths_that_leave_the_root_are_refused_by_the_models(path: str) -> None:
    assert leaves_root(path)
    with pytest.raises(ValidationError, match="leaves the video root"):
        VideoRecord(video_id="v", path=path, status="ok", duration_s=4.0, sample_fps=1.0, num_frames=4)


@pytest.mark.parametrize("path", INSIDE)
def test_paths_inside_the_root_pass(path: str) -> None:
    assert not leaves_root(path)


def test_a_recipe_skips_videos_outside_the_folder_with_a_reason(tmp_path: Path) -> None:
    annotations = tmp_path / "ann.jsonl"
    lines = [{"video": v, "start": 1, "end": 3, "text": "a thing happens", "duration": 8.0}
             for v in ["ok.mp4", *OUTSIDE]]
    annotations.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = run_recipe(RECIPES["generic"](), annotations, tmp_path / "work")
    assert report.events == 1 and report.videos == 1
    assert report.skipped["video path leaves the videos folder (absolute, or up with ..)"] == len(OUTSIDE)


@pytest.fixture()
def escaping_release(tmp_path: Path) -> tuple[Path, Path, str]:
    """A release (as one made elsewhere might be) whose one sample names ../outside/secret.mp4."""
    videos = tmp_path / "videos"
    write_video(videos / "ok.mp4", 8, 1.0)
    write_video(tmp_path / "outside" / "secret.mp4", 8, 1.0)
    (tmp_path / "ann.jsonl").write_text(json.dumps({"video": "ok.mp4", "start": 1, "end": 3, "text": "a thing",
                                                    "duration": 8.0}) + "\n")
    runner = CliRunner()
    for args in (["recipe", "generic", "--annotations", str(tmp_path / "ann.jsonl"), "--out", str(tmp_path / "w")],
                 ["build", str(tmp_path / "w"), "--executor", "local"],
                 ["release", str(tmp_path / "w"), "--out", str(tmp_path / "rel")]):
        assert runner.invoke(app, args).exit_code == 0
    release = tmp_path / "rel"
    manifest = json.loads((release / "manifest.json").read_text())
    shard = manifest["shards"][0]
    rows = pq.read_table(release / shard["path"]).to_pylist()
    rows[0]["video_path"] = "../outside/secret.mp4"
    pq.write_table(pq.read_table(release / shard["path"]).from_pylist(rows, schema=SAMPLE_FEATURES.arrow_schema),
                   release / shard["path"])
    shard["sha256"] = sha256_of(release / shard["path"])
    (release / "manifest.json").write_text(json.dumps(manifest))
    return release, videos, rows[0]["sample_id"]


def test_readers_refuse_a_release_whose_video_leaves_the_root(escaping_release: tuple[Path, Path, str],
                                                              tmp_path: Path) -> None:
    release, videos, sample_id = escaping_release
    runner = CliRunner()
    for args in (["export", "frames", str(release), "--video-root", str(videos), "--out", str(tmp_path / "frames"),
                  "--executor", "local"],
                 ["show", str(release), sample_id, "--video-root", str(videos), "--out", str(tmp_path / "s.png")],
                 ["export", "stream-format", str(release), "--out", str(tmp_path / "s.jsonl"),
                  "--video-root", str(videos)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "leaves the video root" in result.output, (args, result.output)
        assert sample_id in result.output and "Traceback" not in result.output
    assert not (tmp_path / "frames" / "images.jsonl").exists() and not (tmp_path / "s.png").exists()
    assert not (tmp_path / "s.jsonl").exists()
    checked = runner.invoke(app, ["validate", str(release)])
    assert checked.exit_code == 1 and "leaves the video root" in checked.output


def test_a_stream_format_sample_is_validated_too() -> None:
    with pytest.raises(ValidationError, match="leaves the video root"):
        StreamingSample.create(task="narration", source="s", video_id="v", video_path="/abs/v.mp4", duration_s=4.0,
                               fps=1.0, num_frames=4, questions=[], responses=[])
