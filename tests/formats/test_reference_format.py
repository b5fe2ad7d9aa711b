"""Byte-for-byte compatibility with the reference converter's stream format, on hand-written raw records.

Every expected record below is written out by hand, frame by frame, from the reference converter's
rules (maifoundations/Streamo, scripts/convert_streaming_video.py `to-stream`), including its quirks:
the first question repeated on frame 0, last writer wins, answers past the end dropped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.formats.render import (
    DEFAULT_QUESTION,
    REFERENCE_SYSTEM_PROMPT,
    parse_raw_time,
)
from streamo_data.video.probe import sampled_frame_count
from tests.conftest import write_video

NUM_FRAMES = 12  # 120 native frames at 10 fps -> 12 frames at 1 fps
SIL, STB = "</Silence>", "</Standby>"


def resp(text: str) -> str:
    return f"</Response> {text}"


# name -> (raw record, {frame: question shown}, [assistant turn per frame])
CASES: dict[str, tuple[dict[str, Any], dict[int, str], list[str]]] = {
    "question_before_evidence": (
        {"question": [{"content": "What does the red square do?", "time": "2"}],
         "response": [{"content": "It moves right.", "st_time": "4", "end_time": "7"}]},
        {0: "What does the red square do?", 1: "What does the red square do?"},
        [SIL, SIL, SIL, STB, STB, STB, STB, resp("It moves right."), SIL, SIL, SIL, SIL],
    ),
    "question_inside_evidence": (
        {"question": [{"content": "Tell me when the café sign lights up.", "time": 5}],
         "response": [{"content": "The café sign is lit — from 3s to 8s.", "st_time": 3, "end_time": 8}]},
        {0: "Tell me when the café sign lights up.", 4: "Tell me when the café sign lights up."},
        [SIL, SIL, STB, STB, STB, STB, STB, STB, resp("The café sign is lit — from 3s to 8s."), SIL, SIL, SIL],
    ),
    "question_after_evidence": (
        {"question": [{"content": "What fell over earlier?", "time": "9"}],
         "response": [{"content": "A vase.", "st_time": "2", "end_time": "4"}]},
        {0: "What fell over earlier?", 8: "What fell over earlier?"},
        [SIL, STB, STB, STB, resp("A vase."), SIL, SIL, SIL, SIL, SIL, SIL, SIL],
    ),
    "instant_response": (
        {"question": [{"content": "Say when the light turns green.", "time": "0"}],
         "response": [{"content": "Green now.", "time": "6"}]},
        {0: "Say when the light turns green."},
        [SIL, SIL, SIL, SIL, SIL, resp("Green now."), SIL, SIL, SIL, SIL, SIL, SIL],
    ),
    "several_responses": (
        {"question": [{"content": "Narrate the steps.", "time": "0"}],
         "response": [{"content": "first", "st_time": "1", "end_time": "3"},
                      {"content": "second", "time": "6"},
                      {"content": "third", "st_time": "7", "end_time": "9"}]},
        {0: "Narrate the steps."},
        [STB, STB, STB, resp("first"), SIL, resp("second"), STB, STB, STB, resp("third"), SIL, SIL],
    ),
    "overlapping_spans_nothing_lost": (
        {"question": [{"content": "Describe the events.", "time": "0"}],
         "response": [{"content": "A", "st_time": "2", "end_time": "6"},
                      {"content": "B", "st_time": "4", "end_time": "5"}]},
        {0: "Describe the events."},
        [SIL, STB, STB, STB, STB, resp("B"), resp("A"), SIL, SIL, SIL, SIL, SIL],
    ),
    "overlapping_spans_reference_loses_one": (
        {"question": [{"content": "Describe the events.", "time": "0"}],
         "response": [{"content": "A", "st_time": "2", "end_time": "6"},
                      {"content": "B", "st_time": "4", "end_time": "9"}]},
        {0: "Describe the events."},
        [SIL, STB, STB, STB, STB, STB, STB, STB, STB, resp("B"), SIL, SIL],
    ),
    "response_past_the_end": (
        {"question": [{"content": "What happens?", "time": "1"}],
         "response": [{"content": "early", "time": "3"},
                      {"content": "late", "st_time": "10", "end_time": "14"}]},
        {0: "What happens?"},
        [SIL, SIL, resp("early"), SIL, SIL, SIL, SIL, SIL, SIL, STB, STB, STB],
    ),
    "reference_example_types": (  # string, float and empty times side by side, as in the reference's example
        {"question": [{"content": "What event is the person being interviewed at?", "time": "5"}],
         "response": [{"content": "A red carpet event.", "st_time": 5.0, "end_time": 6.0, "time": ""}]},
        {0: "What event is the person being interviewed at?", 4: "What event is the person being interviewed at?"},
        [SIL, SIL, SIL, SIL, STB, STB, resp("A red carpet event."), SIL, SIL, SIL, SIL, SIL],
    ),
    "no_question": (
        {"question": [], "response": [{"content": "Something moves.", "st_time": "2", "end_time": "3"}]},
        {0: DEFAULT_QUESTION},
        [SIL, STB, STB, resp("Something moves."), SIL, SIL, SIL, SIL, SIL, SIL, SIL, SIL],
    ),
}
# What our validated path (raw-to-samples) must refuse, because the reference would lose an answer or
# there is no instruction to attach the sample to.
REJECTED = {"overlapping_spans_reference_loses_one", "response_past_the_end", "no_question"}


def expected_record(name: str, video_path: str) -> dict[str, Any]:
    _, shown, assistant = CASES[name]
    messages = [{"role": "system", "content": REFERENCE_SYSTEM_PROMPT}]
    for frame in range(NUM_FRAMES):
        tag = f"<{frame}s-{frame + 1}s>\n<stream>"
        messages.append({"role": "user", "content": f"{shown[frame]}\n{tag}" if frame in shown else tag})
        messages.append({"role": "assistant", "content": assistant[frame]})
    return {"messages": messages, "videos": [video_path], "video_name": f"{name}.mp4", "task_type": "QA",
            "source": "handwritten"}


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("reference")
    videos = root / "videos"
    records = []
    for name, (record, _, _) in CASES.items():
        write_video(videos / "clips" / f"{name}.mp4", num_frames=120, fps=10)
        records.append({"video_name": f"{name}.mp4", "video_path": f"clips/{name}.mp4", "task_type": "QA",
                        "source": "handwritten", **record})
    raw = root / "raw.json"
    raw.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return raw, videos


def test_system_prompt_is_the_reference_prompt() -> None:
    assert REFERENCE_SYSTEM_PROMPT.startswith("\nYou are a helpful assistant specializing in streaming video")
    assert REFERENCE_SYSTEM_PROMPT.endswith("Whenever you deliver an answer, begin with </Response>.\n")
    assert REFERENCE_SYSTEM_PROMPT.count("  \n") == 4  # the reference's trailing double spaces survive
    # pinned, so that an edit to the prompt (which would change every rendered byte) cannot go unnoticed
    assert hashlib.sha256(REFERENCE_SYSTEM_PROMPT.encode()).hexdigest() == (
        "c69894b6f80f930b5878728d17a529a0b4a060928fd398618b33bafca4ff7c95"
    )


@pytest.mark.parametrize(("native", "native_fps", "fps", "frames"), [
    (120, 10.0, 1.0, 12), (250, 25.0, 1.0, 10), (132, 25.0, 1.0, 5),
    (120, 30000 / 1001, 1.0, 4),  # int(29.97) = 29 native frames per sampled frame
    (1798, 30000 / 1001, 1.0, 62),  # ...so a 60 s NTSC video has 62 frames, as the reference counts
    (100, 10.0, 2.0, 20), (7, 30.0, 1.0, 0), (50, 0.5, 1.0, 50),
])
def test_sampled_frame_count_matches_the_reference_rule(
    native: int, native_fps: float, fps: float, frames: int
) -> None:
    assert sampled_frame_count(native, native_fps, fps) == frames


@pytest.mark.parametrize(("value", "seconds"), [
    ("5", 5.0), (5, 5.0), (6.0, 6.0), ("2.5", 2.5), ("", None), (None, None), ("01:05", 65.0), ("1:00:02", 3602.0),
])
def test_raw_times_are_read_as_seconds(value: Any, seconds: float | None) -> None:
    assert parse_raw_time(value) == seconds


def test_unreadable_raw_time_names_the_value() -> None:
    with pytest.raises(ValueError, match="'soon'"):
        parse_raw_time("soon")


def test_raw_to_stream_is_byte_for_byte_the_reference_file(raw_file: tuple[Path, Path], tmp_path: Path) -> None:
    raw, videos = raw_file
    out = tmp_path / "stream_format.json"
    result = CliRunner().invoke(app, ["convert", "raw-to-stream", str(raw), "--out", str(out),
                                      "--video-root", str(videos)])
    assert result.exit_code == 0, result.output
    expected = [expected_record(name, str(videos / "clips" / f"{name}.mp4")) for name in CASES]
    # the reference writes json.dump(records, f, ensure_ascii=False, indent=2)
    assert out.read_bytes() == json.dumps(expected, ensure_ascii=False, indent=2).encode("utf-8")
    # its silent drops are reported here, each naming the record
    assert "record 6 (overlapping_spans_reference_loses_one.mp4)" in result.output
    assert "record 7 (response_past_the_end.mp4)" in result.output


def test_validated_path_renders_the_same_bytes_and_rejects_lossy_records(
    raw_file: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, videos = raw_file
    runner = CliRunner()
    work, release, out = tmp_path / "work", tmp_path / "release", tmp_path / "stream.jsonl"
    for args in (["convert", "raw-to-samples", str(raw), "--out", str(work), "--video-root", str(videos)],
                 ["release", str(work), "--out", str(release)],
                 ["validate", str(release)],
                 ["export", "stream-format", str(release), "--out", str(out), "--video-root", str(videos)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)

    expected = {json.dumps(expected_record(name, str(videos / "clips" / f"{name}.mp4")), ensure_ascii=False)
                for name in CASES if name not in REJECTED}
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(expected) and set(lines) == expected

    rejects = [json.loads(line) for line in (work / "rejects.jsonl").read_text().splitlines()]
    by_item = {r["item"]: " ".join(r["reasons"]) for r in rejects}
    assert set(by_item) == {f"record {list(CASES).index(n)} ({n}.mp4)" for n in REJECTED}
    assert "covered by a later standby" in by_item["record 6 (overlapping_spans_reference_loses_one.mp4)"]
    assert "past the video's end" in by_item["record 7 (response_past_the_end.mp4)"]
    assert "questions" in by_item["record 9 (no_question.mp4)"]


def test_missing_video_is_a_counted_reason_not_a_crash(tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps([{"video_path": "nowhere.mp4", "question": [{"content": "q", "time": 0}],
                                "response": [{"content": "a", "time": 1}]}]))
    result = CliRunner().invoke(app, ["convert", "raw-to-samples", str(raw), "--out", str(tmp_path / "w")])
    assert result.exit_code == 0
    assert "video not found: nowhere.mp4" in result.output
    assert "0 samples from 1 records" in result.output


@pytest.mark.parametrize("as_json_list", [True, False])
def test_streamed_record_text_is_the_one_shot_text_byte_for_byte(as_json_list: bool) -> None:
    from streamo_data.formats.render import dumps_records, iter_record_text

    cases = [[], [{"a": 1}], [{"messages": [{"role": "user", "content": "Q?\n<0s-1s>\n<stream>"}], "videos": ["é.mp4"]},
                              {"empty": {}, "list": [], "nested": [[1, 2], {"x": None}]}]]
    for records in cases:
        assert "".join(iter_record_text(iter(records), as_json_list)) == dumps_records(records, as_json_list)
