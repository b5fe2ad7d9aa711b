"""`streamo convert raw-to-stream` is the reference converter (maifoundations/Streamo,
scripts/convert_streaming_video.py `to-stream`), byte for byte, on unusual records too.

Each expected record is written out by hand from what the reference script does with the input (and
was checked by running the script itself on the same files): times truncated with int(), a later
question on a frame replacing an earlier one, untimed questions ignored unless first, nothing validated.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.formats import raw_records
from streamo_data.formats.render import DEFAULT_QUESTION, REFERENCE_SYSTEM_PROMPT
from streamo_data.reference.convert import raw_to_stream, reference_frame_count
from streamo_data.store.io import write_text_atomic
from tests.conftest import write_video

SIL, STB = "</Silence>", "</Standby>"


def resp(text: str) -> str:
    return f"</Response> {text}"


def Q(content: Any, time: Any) -> dict[str, Any]:  # noqa: N802 - reads like the raw format
    return {"content": content, "time": time}


# name -> (raw record without video fields, {frame: question shown}, assistant turn per frame); videos
# have 6 frames at 1 fps unless the name says otherwise
CASES: dict[str, tuple[dict[str, Any], dict[int, Any], list[str]]] = {
    "two_questions_one_frame": (  # the later question wins the frame; the first is still the frame-0 fallback
        {"question": [Q("first?", "3"), Q("second?", "3")], "response": [{"content": "r", "time": "5"}]},
        {0: "first?", 2: "second?"}, [SIL, SIL, SIL, SIL, resp("r"), SIL],
    ),
    "untimed_question_not_first": (
        {"question": [Q("timed?", "2"), {"content": "untimed?"}], "response": []},
        {0: "timed?", 1: "timed?"}, [SIL] * 6,
    ),
    "untimed_question_first": (
        {"question": [{"content": "untimed?"}, Q("later?", 4)], "response": []},
        {0: "untimed?", 3: "later?"}, [SIL] * 6,
    ),
    "fractional_times_truncate": (
        {"question": [Q("q", "2.7")],
         "response": [{"content": "span", "st_time": "1.5", "end_time": "3.9"}, {"content": "t", "time": 5.99}]},
        {0: "q", 1: "q"}, [STB, STB, STB, resp("span"), resp("t"), SIL],
    ),
    "empty_content": (
        {"question": [Q("", "0"), Q("q", "1")],
         "response": [{"content": "", "time": "5"}, {"content": "x", "st_time": 1, "end_time": 2}]},
        {0: "q"}, [STB, STB, resp("x"), SIL, SIL, SIL],
    ),
    "reversed_span": (
        {"question": [Q("q", 0)], "response": [{"content": "rev", "st_time": "4", "end_time": "2"}]},
        {0: "q"}, [SIL, SIL, resp("rev"), SIL, SIL, SIL],
    ),
    "negative_times": (
        {"question": [Q("q", -3)], "response": [{"content": "neg", "time": -2}]},
        {0: "q"}, [resp("neg"), SIL, SIL, SIL, SIL, SIL],
    ),
    "st_time_without_end_time_plus_time": (
        {"question": [Q("q", 0)], "response": [{"content": "st only", "st_time": "2", "time": "4"}]},
        {0: "q"}, [SIL, SIL, SIL, resp("st only"), SIL, SIL],
    ),
    "response_without_time": (
        {"question": [Q("q", 0)], "response": [{"content": "no time"}]},
        {0: "q"}, [SIL] * 6,
    ),
    "time_true": (
        {"question": [Q("q", True)], "response": [{"content": "t", "time": True}]},
        {0: "q"}, [resp("t"), SIL, SIL, SIL, SIL, SIL],
    ),
    "numeric_content": (
        {"question": [Q(5, 2)], "response": [{"content": 3.5, "time": 3}, {"content": [1, "é"], "time": 4}]},
        {0: 5, 1: 5}, [SIL, SIL, resp("3.5"), resp("[1, 'é']"), SIL, SIL],
    ),
    "unreadable_time_strings": (
        {"question": [Q("q", "soon")],
         "response": [{"content": "r", "time": "later"}, {"content": "m", "time": "00:03"}]},
        {0: "q"}, [SIL, SIL, resp("m"), SIL, SIL, SIL],
    ),
    "one_native_frame_at_half_fps": (  # a 2 s video of a single native frame: one sampled frame
        {"question": [Q("q", 0)], "response": [{"content": "r", "time": 1}]},
        {0: "q"}, [resp("r")],
    ),
    "no_question_lists": (  # "" and {} iterate as nothing in the reference
        {"question": "", "response": {}},
        {0: DEFAULT_QUESTION}, [SIL] * 6,
    ),
}


def video_of(name: str) -> str:
    return "one.mp4" if name == "one_native_frame_at_half_fps" else "six.mp4"


def expected_record(name: str, videos: Path) -> dict[str, Any]:
    _, shown, assistant = CASES[name]
    messages = [{"role": "system", "content": REFERENCE_SYSTEM_PROMPT}]
    for frame, state in enumerate(assistant):
        tag = f"<{frame}s-{frame + 1}s>\n<stream>"
        messages.append({"role": "user", "content": f"{shown[frame]}\n{tag}" if frame in shown else tag})
        messages.append({"role": "assistant", "content": state})
    return {"messages": messages, "videos": [str(videos / video_of(name))], "video_name": name, "task_type": "QA"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "six.mp4", num_frames=60, fps=10)
    write_video(folder / "one.mp4", num_frames=1, fps=0.5)
    return folder


def raw_record(name: str) -> dict[str, Any]:
    return copy.deepcopy({"video_name": name, "video_path": video_of(name), "task_type": "QA", "source": "",
                          **CASES[name][0]})


def write_raw(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def convert(raw: Path, out: Path, videos: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["convert", "raw-to-stream", str(raw), "--out", str(out),
                                    "--video-root", str(videos), *extra])


@pytest.mark.parametrize("name", list(CASES))
def test_each_unusual_record_is_written_as_the_reference_writes_it(name: str, videos: Path, tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw.json", [raw_record(name)])
    result = convert(raw, tmp_path / "out.json", videos)
    assert result.exit_code == 0, result.output
    expected = json.dumps([expected_record(name, videos)], ensure_ascii=False, indent=2)
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == expected


def test_a_single_object_file_is_written_back_as_one_object(videos: Path, tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw.json", raw_record("reversed_span"))
    assert convert(raw, tmp_path / "out.json", videos).exit_code == 0
    expected = json.dumps(expected_record("reversed_span", videos), ensure_ascii=False, indent=2)
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == expected


def test_a_single_object_that_is_dropped_leaves_an_empty_list(videos: Path, tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw.json", {"video_path": "missing.mp4", "question": []})
    result = convert(raw, tmp_path / "out.json", videos)
    assert result.exit_code == 0
    assert (tmp_path / "out.json").read_text() == "[]"
    assert "record 0 (missing.mp4): video not found" in result.output


def test_what_the_reference_loses_is_reported(videos: Path, tmp_path: Path) -> None:
    names = ["two_questions_one_frame", "untimed_question_not_first", "response_without_time"]
    records = [raw_record(n) for n in names]
    records[0]["question"].insert(0, Q("zero?", 1))  # "first?" is no longer the frame-0 fallback
    raw = write_raw(tmp_path / "raw.json", records)
    output = " ".join(convert(raw, tmp_path / "out.json", videos).output.split())
    assert "record 0 (two_questions_one_frame): question 1 ('first?') is never shown: question 2" in output
    assert "record 1 (untimed_question_not_first): question 1 ('untimed?') is never shown" in output
    assert "record 2 (response_without_time): response 0 ('no time') is lost" in output


@pytest.mark.parametrize("bad", [
    {"question": ["not a turn"]}, {"response": [5]}, {"question": None}, {"response": [Q("r", float("nan"))]},
])
def test_a_record_the_reference_would_abort_on_is_dropped_alone(
    bad: dict[str, Any], videos: Path, tmp_path: Path
) -> None:
    good = raw_record("reversed_span")
    raw = write_raw(tmp_path / "raw.json", [good, {**good, "video_name": "bad", **bad}, "not a record", good])
    result = convert(raw, tmp_path / "out.json", videos)
    assert result.exit_code == 0, result.output
    assert "2 of 4 records" in result.output
    output = " ".join(result.output.split())
    assert "record 1 (bad):" in output and "record 2 (no video): is str, not an object" in output
    assert json.loads((tmp_path / "out.json").read_text()) == [expected_record("reversed_span", videos)] * 2


def test_a_non_object_turn_is_a_rejection_reason_in_raw_to_samples(videos: Path, tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw.json", [{**raw_record("reversed_span"), "question": [Q("q", 0), "oops"]}, 7])
    result = CliRunner().invoke(app, ["convert", "raw-to-samples", str(raw), "--out", str(tmp_path / "w"),
                                      "--video-root", str(videos)])
    assert result.exit_code == 0, result.output
    reasons = [json.loads(line) for line in (tmp_path / "w" / "rejects.jsonl").read_text().splitlines()]
    assert [r["reasons"] for r in reasons] == [["question 1 is str, not an object"],
                                               ["the record is int, not an object"]]


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not_json": (b'[{"video_path": "a.mp4",', "not valid JSON"),
    "trailing_comma": (b'[{"video_path": "a.mp4"},]', "not valid JSON"),
    "bom": (b'\xef\xbb\xbf[{"video_path": "a.mp4"}]', "byte-order mark"),
    "latin1": ('[{"video_name": "café", "video_path": "a.mp4"}]'.encode("latin-1"), "not UTF-8"),
    "top_level_number": (b"42", "the top level is a number"),
    "top_level_string": (b'"records"', "the top level is a string"),
    "empty": (b"  \n", "empty file"),
    "extra_data": (b'[{"video_path": "a.mp4"}] x', "extra data after the list"),
}


@pytest.mark.parametrize("command", ["raw-to-stream", "raw-to-samples"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_an_unreadable_raw_file_is_one_line_and_exit_2(command: str, case: str, tmp_path: Path) -> None:
    content, reason = BAD_FILES[case]
    raw = tmp_path / f"{case}.json"
    raw.write_bytes(content)
    out = tmp_path / ("out.json" if command == "raw-to-stream" else "work")
    result = CliRunner().invoke(app, ["convert", command, str(raw), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not a traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(raw) in lines[0] and reason in lines[0], lines
    assert not out.exists()  # nothing half-written


def test_json_lines_input_is_read_record_by_record(videos: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps(raw_record(n)) + "\n" for n in ("reversed_span", "time_true")))
    assert convert(raw, tmp_path / "out.json", videos).exit_code == 0
    expected = [expected_record(n, videos) for n in ("reversed_span", "time_true")]
    assert (tmp_path / "out.json").read_text() == json.dumps(expected, ensure_ascii=False, indent=2)


@pytest.mark.parametrize("path", ["../six.mp4", "sub/../../six.mp4", "ABSOLUTE"])
def test_a_video_path_outside_the_root_is_rejected_by_raw_to_samples_and_flagged_by_raw_to_stream(
    path: str, videos: Path, tmp_path: Path
) -> None:
    root = videos / "root"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    path = str(videos / "six.mp4") if path == "ABSOLUTE" else path
    record = {**raw_record("reversed_span"), "video_path": path}
    raw = write_raw(tmp_path / "raw.json", [record])
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "raw-to-samples", str(raw), "--out", str(tmp_path / "w"),
                                 "--video-root", str(root)])
    assert result.exit_code == 0 and "0 samples from 1 records" in result.output, result.output
    assert "is outside --video-root" in (tmp_path / "w" / "rejects.jsonl").read_text()

    result = convert(raw, tmp_path / "out.json", root)
    assert result.exit_code == 0 and "1 of 1 records" in result.output, result.output
    assert "is outside --video-root; kept" in " ".join(result.output.split())
    assert json.loads((tmp_path / "out.json").read_text())[0]["videos"] == [os.path.join(str(root), path)]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_outputs_get_normal_permissions(umask: int, mode: int, tmp_path: Path) -> None:
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == mode


def test_raw_to_stream_output_is_readable_by_others(videos: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        raw = write_raw(tmp_path / "raw.json", [raw_record("reversed_span")])
        assert convert(raw, tmp_path / "out.json", videos).exit_code == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644


def test_process_pool_keeps_the_input_order(videos: Path, tmp_path: Path) -> None:
    names = list(CASES) * 3
    records = [raw_record(n) for n in names]
    records.insert(5, {"video_path": "missing.mp4"})
    raw = write_raw(tmp_path / "raw.json", records)
    summary = raw_to_stream(raw, str(videos), tmp_path / "pool.json", workers=2, chunk_size=4)
    assert (summary.records, summary.written) == (len(records), len(names))
    expected = [expected_record(n, videos) for n in names]
    assert (tmp_path / "pool.json").read_text() == json.dumps(expected, ensure_ascii=False, indent=2)


def test_the_reader_streams_across_block_boundaries(
    videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raw_records, "_BLOCK", 7)  # every record and number spans several blocks
    records: list[Any] = [raw_record(n) for n in CASES]
    records += [12345678, [1, 2], "s"]
    raw = write_raw(tmp_path / "raw.json", records)
    assert list(raw_records.open_raw_records(raw).records) == records


def test_each_video_is_counted_once(videos: Path, tmp_path: Path) -> None:
    reference_frame_count.cache_clear()
    raw = write_raw(tmp_path / "raw.json", [raw_record("reversed_span")] * 20 + [raw_record("time_true")] * 20)
    raw_to_stream(raw, str(videos), tmp_path / "out.json", workers=1)
    assert reference_frame_count.cache_info().misses == 1


def test_jsonl_output_holds_the_same_records(videos: Path, tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw.json", [raw_record(n) for n in CASES])
    assert convert(raw, tmp_path / "out.jsonl", videos).exit_code == 0
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [expected_record(n, videos) for n in CASES]


def test_a_video_shorter_than_one_sampled_frame_is_dropped_as_the_reference_drops_it(
    videos: Path, tmp_path: Path
) -> None:
    write_video(videos / "short.mp4", num_frames=5, fps=10)  # half a second: 5 // 10 = 0 frames at 1 fps
    raw = write_raw(tmp_path / "raw.json", [{**raw_record("reversed_span"), "video_path": "short.mp4"}])
    result = convert(raw, tmp_path / "out.json", videos)
    assert result.exit_code == 0
    assert (tmp_path / "out.json").read_text() == "[]"
    assert "record 0 (reversed_span): no frames in video" in " ".join(result.output.split())


def test_a_video_too_short_for_one_sampled_frame_has_one_reason_in_both_converters(tmp_path: Path) -> None:
    """Ours and the reference's converter count frames in one place, so they give a too-short video the
    same reason (ours rejected it with another, or let a zero-frame grid through)."""
    from streamo_data.stages.raw_to_samples import raw_to_samples

    write_video(tmp_path / "videos" / "short.mp4", 3, 30.0)  # 3 native frames at 30 fps: none at 1 fps
    record = {"video_name": "short", "video_path": "short.mp4", "task_type": "qa", "source": "X",
              "question": [{"content": "What?", "time": "0"}], "response": [{"content": "A dog.", "time": "1"}]}
    (tmp_path / "raw.json").write_text(json.dumps([record]))
    reason = reference_frame_count(str(tmp_path / "videos" / "short.mp4"), 1.0)
    assert isinstance(reason, str) and reason.startswith("no frames in video")
    summary = raw_to_samples(tmp_path / "raw.json", str(tmp_path / "videos"), tmp_path / "work")
    assert summary.written == 0 and list(summary.rejected) == [reason]
