"""Single-file outputs never replace what a command reads, never land inside a corpus it reads, and never
replace an earlier file without --replace; a folder given as a file is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.release.validate import validate_release
from streamo_data.release.write import write_release
from streamo_data.store.manifest import read_manifest
from streamo_data.store.workdir import SAMPLES
from tests.conftest import built_work_dir, write_video

RAW = [{"video_name": "a", "video_path": "a.mp4", "task_type": "qa", "source": "X",
        "question": [{"content": "What?", "time": "0"}], "response": [{"content": "A dog.", "time": "3"}]}]


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = built_work_dir(sample_videos, tmp_path_factory.mktemp("work"), ["temporal_grounding"])
    out = work.parent / f"{work.name}-release"
    write_release(work / SAMPLES, out)
    return out


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_stream_format_and_frames_records_never_write_into_the_release(release: Path, sample_videos: Path,
                                                                        tmp_path: Path) -> None:
    before = (release / "manifest.json").read_bytes()
    code, output = invoke("export", "stream-format", release, "--out", release / "manifest.json", "--replace")
    assert code == 2 and "which this command reads" in output, output
    code, output = invoke("export", "frames", release, "--video-root", sample_videos, "--out", tmp_path / "f",
                          "--records", release / "manifest.json", "--executor", "local")
    assert code == 2 and "--records" in output and "which this command reads" in output, output
    code, output = invoke("export", "frames", release, "--video-root", sample_videos, "--out", release / "frames",
                          "--executor", "local")
    assert code == 2 and "which this command reads" in output, output
    assert (release / "manifest.json").read_bytes() == before and validate_release(release).ok
    assert not (tmp_path / "f").exists() and not (release / "frames").exists()


def test_convert_and_audit_never_replace_their_input(tmp_path: Path) -> None:
    write_video(tmp_path / "videos" / "a.mp4", 6, 1.0)
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(RAW))
    code, output = invoke("convert", "raw-to-stream", raw, "--out", raw, "--video-root", tmp_path / "videos",
                          "--replace")
    assert code == 2 and "which this command reads" in output
    corpus = tmp_path / "corpus" / "qa"
    corpus.mkdir(parents=True)
    (corpus / "x.json").write_text(json.dumps(RAW))
    code, output = invoke("audit", tmp_path / "corpus", "--json", corpus / "x.json", "--replace")
    assert code == 2 and "which this command reads" in output
    assert json.loads(raw.read_text()) == RAW and json.loads((corpus / "x.json").read_text()) == RAW


def test_an_existing_output_is_replaced_only_with_replace(release: Path, tmp_path: Path) -> None:
    sample_id = read_manifest(release).shards[0].path  # any path: the refusal comes before the sample is read
    notes = tmp_path / "notes.html"
    notes.write_text("my notes")
    code, output = invoke("show", release, sample_id, "--out", notes)
    assert code == 2 and "already exists: give --replace" in output and notes.read_text() == "my notes"
    out = tmp_path / "stream.jsonl"
    out.write_text("earlier\n")
    code, output = invoke("export", "stream-format", release, "--out", out)
    assert code == 2 and "already exists" in output and out.read_text() == "earlier\n"
    code, output = invoke("export", "stream-format", release, "--out", out, "--replace")
    assert code == 0 and out.read_text() != "earlier\n"


@pytest.mark.parametrize("command", [["show", "SAMPLE"], ["export", "stream-format"]])
def test_a_folder_as_the_output_file_is_one_line(release: Path, tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "d.html"
    folder.mkdir()
    args = [command[0], release, *command[1:]] if command[0] == "show" else [*command, release]
    code, output = invoke(*args, "--out", folder)
    assert code == 2 and "is a folder, not a file" in output and len(output.strip().splitlines()) == 1, output
