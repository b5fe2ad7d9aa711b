"""`streamo audit` on a folder in the released Streamo-Instruct layout with planted defects, counted exactly.

The fixture (tests/fixtures/audit_release) plants, per task folder and source:
qa/ActivityNet: 6 records: one clean, one answer overwritten on its frame, one untimed question, two questions on
one frame, 'response' a string (the reference aborts), no video_path (the reference drops it);
qa/LLaVA_Video: one clean, one with an untimed response;
event_grounding/didemo: one clean, one answered at 10 s on a 10 s video (past the end, with videos only);
event_grounding/(none): one clean record without a source;
event_caption: one file cut off after its first record, one file in Latin-1;
action_caption: a NaN time, a record that is a list, a clean one, one without any response;
narration/Koala: one clean, one whose video is missing (dropped, with videos only);
plus notes.txt beside the folders and qa/README.md inside one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.reference.audit import audit_release
from tests.conftest import write_video

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audit_release"
NO_LOSS = {"answer_overwritten": 0, "past_end": 0, "same_frame_question": 0, "untimed": 0, "other": 0}


@pytest.fixture(scope="module")
def video_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """a.mp4: 20 s, b.mp4: 10 s (5 fps native, so the reference samples every 5th frame); missing.mp4 absent."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", 100, 5.0)
    write_video(root / "b.mp4", 50, 5.0)
    return root


def _losses(entry: dict) -> dict[str, int]:
    return {**NO_LOSS, **entry["losses"]}


def _by_group(result: dict) -> dict[tuple[str, str], dict]:
    return {(g["folder"], g["source"]): g for g in result["groups"]}


def test_every_planted_defect_is_counted_without_videos() -> None:
    result = audit_release(FIXTURE).as_dict()
    groups = _by_group(result)
    assert {key: g["records"] for key, g in groups.items()} == {
        ("qa", "ActivityNet"): 6, ("qa", "LLaVA_Video"): 2, ("event_grounding", "didemo"): 2,
        ("event_grounding", "(none)"): 1, ("event_caption", "Youcook"): 1, ("action_caption", "coin"): 3,
        ("action_caption", "(none)"): 1, ("narration", "Koala"): 2}
    assert list(result["folders"]) == ["qa", "event_grounding", "event_caption", "action_caption", "narration"]

    activitynet = groups[("qa", "ActivityNet")]
    assert activitynet["lossy_records"] == 3
    assert _losses(activitynet) == {**NO_LOSS, "answer_overwritten": 1, "same_frame_question": 1, "untimed": 1}
    assert activitynet["malformed_reasons"] == {
        "'response' is a str, not a list of objects (the reference aborts its run)": 1,
        "no video_path (the reference drops it)": 1}
    assert _losses(groups[("qa", "LLaVA_Video")]) == {**NO_LOSS, "untimed": 1}
    assert groups[("action_caption", "coin")]["malformed_reasons"] == {
        "no response with text (every frame would be silence)": 1,
        "time nan cannot be converted (cannot convert float NaN to integer) (the reference aborts its run)": 1}
    assert groups[("action_caption", "(none)")]["malformed_reasons"] == {
        "a list, not an object (the reference aborts its run)": 1}
    # without videos each record ends one frame after its latest time: nothing is past the end, nothing dropped
    assert _losses(groups[("event_grounding", "didemo")]) == NO_LOSS

    total = result["total"]
    assert (total["records"], total["lossy_records"], total["malformed"], total["dropped"]) == (18, 4, 5, 0)
    assert _losses(total) == {**NO_LOSS, "answer_overwritten": 1, "same_frame_question": 1, "untimed": 2}
    # event_grounding: 5 + 11 + 5 frames; spans 2-4, 7-10, 2-4 -> standby 3 + 4 + 3, one answer each
    grounding = result["folders"]["event_grounding"]
    assert grounding["frames"] == 21 and grounding["state_share"]["standby"] == round(10 / 21, 4)
    assert grounding["state_ratio"] == "6.5:8.1:2.4"
    assert total["responses_per_record"] == round(17 / 13, 3)

    assert result["files"] == 7 and result["frames_from"].startswith("latest time")
    youcook, latin1 = sorted(result["bad_files"], reverse=True)
    assert "youcook_caption.json: not valid JSON" in youcook
    assert youcook.endswith("(after 1 records, which are counted)")
    assert "latin1_caption.json: not UTF-8" in latin1
    assert sorted(result["skipped"]) == ["notes.txt: not a task folder of the layout",
                                         "qa/README.md: not a .json file"]

    fidelity = result["fidelity"]
    assert fidelity["by"] == "folder"
    assert {folder: row["count"] for folder, row in fidelity["shares"].items()} == {
        "qa": 8, "event_grounding": 3, "event_caption": 1, "action_caption": 4, "narration": 2}
    assert fidelity["shares"]["qa"]["paper"] == 0.486
    assert result["videos"] == 3 and result["video_length"]["0-30s"] == 3


def test_with_videos_the_reference_frame_count_finds_past_end_and_missing_videos(video_root: Path) -> None:
    result = audit_release(FIXTURE, video_root).as_dict()
    groups = _by_group(result)
    assert _losses(groups[("event_grounding", "didemo")]) == {**NO_LOSS, "past_end": 1}
    assert groups[("narration", "Koala")]["dropped_reasons"] == {"video not found": 1}
    total = result["total"]
    assert (total["records"], total["lossy_records"], total["malformed"], total["dropped"]) == (18, 5, 5, 1)
    # 12 converted records: 9 on a.mp4 (20 frames) and 3 on b.mp4 (10 frames)
    assert total["frames"] == 9 * 20 + 3 * 10
    assert result["videos"] == 2 and result["frames_from"] == "videos"
    assert any("missing.mp4" in line and "video not found" in line for line in result["examples"])


def test_the_command_prints_the_table_and_writes_the_json(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    result = CliRunner().invoke(app, ["audit", str(FIXTURE), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "ActivityNet" in result.output and "12:3:2" in result.output and "latest time" in result.output
    assert "latin1_caption.json: not UTF-8" in result.output
    assert json.loads(report.read_text(encoding="utf-8")) == json.loads(json.dumps(audit_release(FIXTURE).as_dict()))


def test_a_folder_outside_the_layout_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    result = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "none of the released task folders" in result.output
    copy = tmp_path / "corpus"
    shutil.copytree(FIXTURE, copy)
    for args in (["--json", str(tmp_path)], ["--video-root", str(tmp_path / "nowhere")]):
        result = CliRunner().invoke(app, ["audit", str(copy), *args])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_benchmark_overlap_of_a_released_layout_corpus(tmp_path: Path) -> None:
    """The released layout has no splits (all of it trains): an overlap is found by id, and a file that
    cannot be read is one line while the others are still checked."""
    benchmark = tmp_path / "bench_ids.txt"
    benchmark.write_text("COIN/a.mp4\n")
    result = CliRunner().invoke(app, ["audit", str(FIXTURE), "--benchmark", str(benchmark), "--json",
                                      str(tmp_path / "overlap.json")], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    [report] = json.loads((tmp_path / "overlap.json").read_text())
    coin = [entry for entry in report["by_corpus_source"] if entry["source"] == "coin"]
    assert coin and coin[0]["split"] == "train" and coin[0]["ids"] == ["a"]
    assert report["bad_files"]  # the latin-1 and the broken-off files, each named
    clean = tmp_path / "other_ids.txt"
    clean.write_text("not_in_the_corpus\n")
    assert CliRunner().invoke(app, ["audit", str(FIXTURE), "--benchmark", str(clean)]).exit_code == 0
