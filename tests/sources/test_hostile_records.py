"""Hostile annotation records: a field of the wrong type, JSON nested deeper than Python's stack, an integer of
5000 digits, a time of 1e308. One bad record is skipped with a counted, named reason; a file Python cannot
read is one line naming it (exit 2); nothing is a traceback, and no time makes a reader build billions of
frames."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.core.schema import EventKind
from streamo_data.formats.raw_records import RawInputError, open_raw_records
from streamo_data.reference.audit import LATE_TIME, audit_release
from streamo_data.sources.recipes.base import WRONG_SHAPE, RawEvent, RecipeReport, each_record
from streamo_data.sources.recipes.run import TOO_LONG

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recipes"
NESTED = "[" * 100_000 + "]" * 100_000
LONG_INT = "9" * 5000
# the training file's published name, for the sources whose file name is their split
PUBLISHED = {"activitynet_captions": "train", "charades_sta": "charades_sta_train", "qvhighlights":
             "highlight_train_release", "didemo": "train_data", "tacos": "train"}


def recipe(tmp_path: Path, name: str, text: str, suffix: str, videos: str | None = None) -> Any:
    """``streamo recipe NAME`` on ``text`` written to a file; the CliRunner result."""
    annotations = tmp_path / f"{PUBLISHED.get(name, 'annotations')}{suffix}"
    annotations.write_text(text)
    args = ["recipe", name, "--annotations", str(annotations), "--out", str(tmp_path / "out")]
    return CliRunner().invoke(app, args + (["--videos", str(FIXTURES / videos)] if videos else []))


def skipped(tmp_path: Path) -> dict[str, int]:
    return json.loads((tmp_path / "out" / "recipe_report.json").read_text())["skipped"]


def mutated(fixture: str, path: tuple[Any, ...], value: Any) -> str:
    """The fixture's JSON with the value at ``path`` replaced."""
    data = json.loads((FIXTURES / fixture).read_text())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(value)
    return json.dumps(data)


# Each of these stopped the whole run with a traceback (TypeError, KeyError, AttributeError, OverflowError).
WRONG_TYPES = [
    ("activitynet_captions", "activitynet_train.json", None, ("v_QOlSCBRmfWY", "timestamps"), None),
    ("activitynet_captions", "activitynet_train.json", None, ("v_QOlSCBRmfWY", "timestamps", 0), {}),
    ("activitynet_captions", "activitynet_train.json", None, ("v_QOlSCBRmfWY", "duration"), 1e308),
    ("youcook2", "youcookii_annotations_trainval.json", None, ("database", "GLGyfWNjmSY", "annotations", 0,
                                                                 "segment"), {}),
    ("coin", "COIN.json", None, ("database", "-j1VfbLyGJY", "duration"), 10**30),
    ("didemo", "didemo_train_data.json", "didemo_durations.json", (0, "times"), None),
    ("et_instruct", "et_instruct_164k_txt.json", None, (0, "conversations"), "x"),
    ("et_instruct", "et_instruct_164k_txt.json", None, (0, "conversations", 0, "value"), None),
    ("et_instruct", "et_instruct_164k_txt.json", None, (0, "conversations", 1), None),
    ("tacos", "tacos_train.json", None, ("s13-d21.avi", "num_frames"), 1e308),
]


@pytest.mark.parametrize(("name", "fixture", "videos", "path", "value"), WRONG_TYPES,
                         ids=[f"{case[0]}:{'/'.join(map(str, case[3]))}={case[4]!r:.10}" for case in WRONG_TYPES])
def test_a_record_with_a_field_of_the_wrong_type_is_skipped_not_a_traceback(
        tmp_path: Path, name: str, fixture: str, videos: str | None, path: tuple[Any, ...], value: Any) -> None:
    result = recipe(tmp_path, name, mutated(fixture, path, value), Path(fixture).suffix, videos)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:  # the fixture's only good video was the hostile one: nothing to write, said so
        assert "were skipped" in result.output and "Traceback" not in result.output
    else:
        assert result.exit_code == 0, result.output
        assert sum(skipped(tmp_path).values()) >= 1


def test_a_duration_past_12_hours_is_its_own_counted_reason(tmp_path: Path) -> None:
    text = mutated("activitynet_train.json", ("v_QOlSCBRmfWY", "duration"), 1e308)
    assert recipe(tmp_path, "activitynet_captions", text, ".json").exit_code == 0
    assert skipped(tmp_path)[TOO_LONG] == 3  # the video's three sentences


@pytest.mark.parametrize("line", ['{"video": "a.mp4", "start": null, "end": 2, "text": "x", "duration": 9}',
                                  '{"video": "a.mp4", "start": 1, "end": 2, "text": "x", "kind": [], "duration": 9}',
                                  '{"video": "a.mp4", "start": 1, "end": 2, "text": "x", "duration": 1e308}'])
def test_generic_lines_of_the_wrong_type_are_skipped(tmp_path: Path, line: str) -> None:
    good = '{"video": "b.mp4", "start": 1, "end": 2, "text": "A dog runs.", "duration": 9}'
    result = recipe(tmp_path, "generic", f"{line}\n{good}\n", ".jsonl")
    assert result.exit_code == 0, result.output
    assert sum(skipped(tmp_path).values()) == 1


def test_each_record_turns_an_error_of_one_record_into_a_counted_skip() -> None:
    report = RecipeReport(recipe="test")

    def events(where: str, record: Any) -> Any:
        yield RawEvent("v", 0.0, 1.0, "half", EventKind.CAPTION, where=where)
        yield RawEvent("v", 0.0, record["end"], "x", EventKind.CAPTION, where=where)

    items = list(each_record([("a", None), ("b", {"end": 2.0}), ("c", [])], events, report))
    assert [item.where for item in items] == ["b", "b"]  # nothing of a half-read record is kept
    assert report.skipped == {WRONG_SHAPE: 2}
    assert report.examples[WRONG_SHAPE][0].startswith("a (TypeError: ")

    def file_level(where: str, record: Any) -> Any:
        raise UserError(f"{where}: the whole file is wrong")
        yield  # pragma: no cover

    with pytest.raises(UserError):
        list(each_record([("a", 1)], file_level, report))


@pytest.mark.parametrize(("text", "reason"), [(NESTED, "nested too deeply"),
                                              ('{"v_a": {"duration": ' + LONG_INT + "}}", "more than 4300 digits")])
def test_a_json_recipe_file_python_cannot_read_is_one_line_naming_it(tmp_path: Path, text: str,
                                                                     reason: str) -> None:
    result = recipe(tmp_path, "activitynet_captions", text, ".json")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "train.json" in result.output and reason in result.output
    if "digits" in reason:
        assert "line 1 column 22" in result.output


def test_a_jsonl_line_python_cannot_read_is_a_skipped_line(tmp_path: Path) -> None:
    good = '{"video": "b.mp4", "start": 1, "end": 2, "text": "A dog runs.", "duration": 9}'
    text = f"{NESTED}\n" + '{"video": "a", "start": ' + LONG_INT + ', "end": 2, "text": "x"}\n' + good + "\n"
    result = recipe(tmp_path, "generic", text, ".jsonl")
    assert result.exit_code == 0, result.output
    reasons = skipped(tmp_path)
    assert sum(reasons.values()) == 2
    assert all(reason.startswith("malformed JSON line: ") for reason in reasons)


# ---- the raw-annotation readers: audit, convert raw-to-stream, convert raw-to-samples -----------------------

def raw_record(question_time: str) -> str:
    return ('[{"video_name": "a", "video_path": "a.mp4", "task_type": "qa", "source": "X", "question":'
            f' [{{"content": "What?", "time": {question_time}}}],'
            ' "response": [{"content": "A dog.", "time": "3"}]}]')


UNREADABLE = [("nested", NESTED, "nested too deeply"), ("long_int", raw_record(LONG_INT), "more than 4300 digits")]


@pytest.mark.parametrize(("label", "text", "reason"), UNREADABLE, ids=[case[0] for case in UNREADABLE])
def test_raw_file_python_cannot_read_is_a_raw_input_error_naming_it(tmp_path: Path, label: str, text: str,
                                                                    reason: str) -> None:
    raw = tmp_path / f"{label}.json"
    raw.write_text(text)
    with pytest.raises(RawInputError, match=rf"{label}\.json: .*{reason}.* \(at line 1 column") as caught:
        list(open_raw_records(raw).records)
    assert isinstance(caught.value, UserError)


@pytest.mark.parametrize("command", ["raw-to-stream", "raw-to-samples"])
@pytest.mark.parametrize(("label", "text", "reason"), UNREADABLE, ids=[case[0] for case in UNREADABLE])
def test_convert_of_a_file_python_cannot_read_is_one_line_and_exit_2(tmp_path: Path, command: str, label: str,
                                                                     text: str, reason: str) -> None:
    raw = tmp_path / f"{label}.json"
    raw.write_text(text)
    out = tmp_path / ("o.jsonl" if command == "raw-to-stream" else "ws")
    result = CliRunner().invoke(app, ["convert", command, str(raw), "--out", str(out), "--video-root",
                                      str(tmp_path), *(["--workers", "1"] if command == "raw-to-stream" else [])])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"{label}.json" in result.output and reason in result.output


@pytest.mark.parametrize(("label", "text", "reason"), UNREADABLE, ids=[case[0] for case in UNREADABLE])
def test_audit_reports_a_file_python_cannot_read_as_a_bad_file(tmp_path: Path, label: str, text: str,
                                                               reason: str) -> None:
    (tmp_path / "c" / "qa").mkdir(parents=True)
    (tmp_path / "c" / "qa" / "x.json").write_text(text)
    result = CliRunner().invoke(app, ["audit", str(tmp_path / "c")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    [bad] = audit_release(tmp_path / "c").bad_files
    assert "x.json" in bad and reason in bad


@pytest.mark.parametrize("question_time", ["1e308", '"99999999999"', '"100000000"', "100000"])
def test_audit_of_an_absurd_time_is_a_malformed_record_not_billions_of_frames(tmp_path: Path,
                                                                              question_time: str) -> None:
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "x.json").write_text(raw_record(question_time))
    started = time.monotonic()
    report = audit_release(tmp_path)
    assert time.monotonic() - started < 5
    assert report.total().malformed == {LATE_TIME: 1}
    assert report.total().states.total() == 0


def test_audit_of_a_time_within_12_hours_still_builds_its_frames(tmp_path: Path) -> None:
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "x.json").write_text(raw_record("3600"))
    total = audit_release(tmp_path).total()
    assert not total.malformed and total.states.total() == 3601
