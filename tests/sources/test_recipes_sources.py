"""The recipes for HACS Segments, TACoS, QuerYD, LLaVA-Video-178K QA and the released Streamo-Instruct layout,
each on a small fixture in its source's published layout with malformed entries: every bad entry is skipped
with a counted, named reason, and the events are exactly what the file says."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.core.schema import Event, VideoRecord
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.store.tables import from_row, iter_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recipes"


def read_events(out: Path) -> list[Event]:
    for row in iter_rows(out / "videos.parquet"):
        VideoRecord.model_validate(row)
    return [from_row(Event, row) for row in iter_rows(out / "events.parquet")]


def run(name: str, annotations: Path, tmp_path: Path, videos: str | None = None) -> tuple[list[tuple], dict]:
    report = run_recipe(RECIPES[name](), annotations, tmp_path / name, videos=FIXTURES / videos if videos else None)
    events = sorted((e.video_id.rsplit("-", 1)[0], e.start_s, e.end_s, e.kind.value, e.text, e.answer)
                    for e in read_events(tmp_path / name))
    return events, dict(report.skipped)


def test_hacs_segments(tmp_path: Path) -> None:
    events, skipped = run("hacs", FIXTURES / "HACS_segments_v1.1.1.json", tmp_path)
    assert events == [("v_--0edUL8zmA", 5.5, 50.0, "action", "Dodgeball", None),
                      ("v_--0edUL8zmA", 60.0, 92.35, "action", "Dodgeball", None)]  # 93.0 clipped to 92.35
    assert skipped == {"empty label": 1, "malformed segment": 1, "missing field: segment/label": 1,
                       "no annotated segment": 1, "malformed duration": 1, "missing field: annotations": 1,
                       # the validation video (whose step also ends before it starts) is held out
                       "subset validation: held out, not training data (--subset validation reads it)": 1}


def test_tacos_frames_are_read_as_seconds_and_paraphrases_share_a_moment(tmp_path: Path) -> None:
    events, skipped = run("tacos", FIXTURES / "tacos_train.json", tmp_path)
    assert events == [("s13-d21", 1.0, 10.0, "action", "He gets a cutting board.", None),
                      ("s13-d21", 1.0, 10.0, "action", "The person takes out a cutting board.", None),
                      ("s13-d21", 20.0, 30.0, "action", "The person washes a carrot.", None)]
    moments = {e.text: e.moment for e in read_events(tmp_path / "tacos")}
    assert moments["He gets a cutting board."] == moments["The person takes out a cutting board."]
    assert skipped == {"time past the video's duration": 1, "malformed timestamp": 1, "empty sentence": 1,
                       "malformed fps or num_frames": 1, "timestamps and sentences differ in length": 1,
                       "missing field: num_frames/fps/timestamps/sentences": 1}


def test_queryd_pickles_with_durations_from_a_catalogue(tmp_path: Path) -> None:
    events, skipped = run("queryd", FIXTURES / "raw_captions_combined_filtered-v2.pkl", tmp_path,
                          videos="queryd_durations.json")
    assert events == [("abc123XYZ_0", 1.5, 4.0, "caption", "a man walks in", None),
                      ("abc123XYZ_0", 5.0, 9.25, "caption", "he sits down", None),
                      ("abc123XYZ_0", 10.0, 12.0, "caption", "a dog barks", None),
                      ("def456", 0.0, 2.5, "caption", "the sun sets", None)]  # 3.0 clipped to 2.5
    assert skipped == {"empty description": 1, "malformed timestamp": 2, "no timestamps for the video": 1,
                       "captions and timestamps differ in length": 1}


class Boom:
    def __reduce__(self) -> tuple:
        return (print, ("code ran",))


def test_a_queryd_pickle_holding_objects_is_refused_without_running_them(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    captions = tmp_path / "raw_captions_combined_filtered.pkl"
    captions.write_bytes(pickle.dumps({"video-a": [Boom()]}))
    (tmp_path / "times_captions_combined_filtered.pkl").write_bytes(pickle.dumps({"video-a": [[0, 1]]}))
    with pytest.raises(UserError, match="only plain lists, dicts, strings and numbers"):
        run_recipe(RECIPES["queryd"](), captions, tmp_path / "out")
    assert "code ran" not in capsys.readouterr().out
    alone = tmp_path / "alone" / "raw_captions_combined_filtered.pkl"
    alone.parent.mkdir()
    alone.write_bytes(captions.read_bytes())
    with pytest.raises(UserError, match="times_captions_combined_filtered.pkl is not beside it"):
        run_recipe(RECIPES["queryd"](), alone, tmp_path / "out")


def test_llava_video_qa_spans_the_whole_video_and_is_answered_at_the_end(tmp_path: Path) -> None:
    events, skipped = run("llava_video", FIXTURES / "0_30_s_youtube_oe_v0_1_qa_processed.json", tmp_path,
                          videos="llava_video_durations.json")
    assert events == [
        ("v_mc", 0.0, 30.0, "qa", "What does the woman do?\nA. Swim\nB. Dance\nAnswer with the option's letter.",
         "B."),
        ("ytb_a1", 0.0, 24.5, "qa", "What color is the car?", "The car is red."),
        ("ytb_a1", 0.0, 24.5, "qa", "Where is it parked?", "On the street."),
    ]
    assert skipped == {"malformed conversation: turns do not come in human/gpt pairs": 2,
                       "empty question or answer": 1, "missing field: video/conversations": 1,
                       "unknown video: not in the --videos catalogue": 1}


def test_llava_video_without_durations_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no duration"):
        run_recipe(RECIPES["llava_video"](), FIXTURES / "0_30_s_youtube_oe_v0_1_qa_processed.json", tmp_path)


def test_streamo_release_layout(tmp_path: Path) -> None:
    events, skipped = run("streamo_release", FIXTURES / "streamo_release", tmp_path,
                          videos="streamo_release_durations.json")
    assert events == [
        ("c1", 5.0, 9.0, "action", "Cut the bread.", None),
        ("e1", 5.0, 5.0, "qa", "What is he holding?", "A cup."),
        ("e1", 12.0, 12.0, "qa", "And now?", "A knife."),
        ("k1", 3.0, 3.0, "narration", "A man enters.", None),
        ("k1", 7.0, 7.0, "narration", "He sits.", None),
        ("q1", 4.0, 6.0, "highlight", "Tell me when the dog jumps.", "The dog jumps."),
        ("v_1", 2.0, 10.0, "caption", "A girl dances.", None),
    ]
    assert skipped == {"missing field: video_path": 1, "response without a usable time": 2,
                       "malformed record: not a JSON object": 1, "no question": 1, "empty response": 1,
                       "unreadable file": 1, "time past the video's duration": 1, "missing field: response": 1}
    sources = {(e.text, e.provenance.params["source"], e.provenance.params["task_type"])
               for e in read_events(tmp_path / "streamo_release") if e.provenance}
    assert ("A girl dances.", "ActivityNet", "event_caption") in sources
    assert ("A cup.", "ego_timeqa", "qa") not in sources and ("What is he holding?", "ego_timeqa", "qa") in sources


def test_the_recipe_command_takes_a_release_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["recipe", "streamo_release", "--annotations", str(FIXTURES / "streamo_release"),
                                      "--out", str(tmp_path / "w"), "--videos",
                                      str(FIXTURES / "streamo_release_durations.json")])
    assert result.exit_code == 0, result.output
    assert len(read_events(tmp_path / "w")) == 7
    wrong = CliRunner().invoke(app, ["recipe", "hacs", "--annotations", str(FIXTURES / "streamo_release"),
                                     "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output


def test_an_empty_release_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "qa").mkdir()
    with pytest.raises(UserError, match="no JSON file in any task folder"):
        run_recipe(RECIPES["streamo_release"](), tmp_path, tmp_path / "out")
