"""Each recipe on a small fixture in its source's exact published format, malformed lines included:
every bad line is skipped with a counted, named reason, and nothing valid is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.core.schema import Event, VideoRecord
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.store.tables import iter_rows
from tests.conftest import write_video

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recipes"


def events_of(out: Path) -> list[tuple[str, float, float, str, str]]:
    rows = [Event.model_validate({**r, "provenance": None}) for r in iter_rows(out / "events.parquet")]
    return sorted((Path(r.video_id).name.rsplit("-", 1)[0], r.start_s, r.end_s, r.kind.value, r.text) for r in rows)


def run(name: str, annotations: str, tmp_path: Path, videos: str | None = None) -> tuple[list, dict]:
    report = run_recipe(RECIPES[name](), FIXTURES / annotations, tmp_path / name,
                        videos=FIXTURES / videos if videos else None)
    for row in iter_rows(tmp_path / name / "videos.parquet"):
        VideoRecord.model_validate(row)
    saved = json.loads((tmp_path / name / "recipe_report.json").read_text())
    assert saved["skipped"] == dict(report.skipped)
    return events_of(tmp_path / name), dict(report.skipped)


def test_activitynet_captions(tmp_path: Path) -> None:
    events, skipped = run("activitynet_captions", "activitynet_train.json", tmp_path)
    assert events == [
        ("v_QOlSCBRmfWY", 0.83, 19.86, "caption",
         "A young woman is seen standing in a room and leads into her dancing."),
        ("v_QOlSCBRmfWY", 17.37, 60.81, "caption",
         "The girl dances around the room while the camera captures her movements."),
        ("v_QOlSCBRmfWY", 56.26, 79.42, "caption",
         "She continues dancing around the room and ends by laying on the floor."),
        ("v_ehGHCYKzyZ8", 0.0, 12.1, "caption", "Two men stand on a court holding rackets."),
        ("v_ehGHCYKzyZ8", 12.1, 61.72, "caption", "They play squash until the end."),  # 62.2 clipped to 61.72
        ("v_end_before_start", 1.0, 4.0, "caption", "A dog runs."),
    ]
    assert skipped == {"end before start": 1, "time past the video's duration": 1,
                       "missing field: timestamps/sentences": 1, "empty sentence": 1,
                       "timestamps and sentences differ in length": 1}


def test_charades_sta_with_durations_from_the_charades_csv(tmp_path: Path) -> None:
    events, skipped = run("charades_sta", "charades_sta_train.txt", tmp_path, videos="Charades_v1_train.csv")
    assert events == [
        ("AO8RW", 0.0, 6.9, "action", "a person is putting a book on a shelf."),
        ("AO8RW", 13.1, 20.4, "action", "person begins to play on a phone."),
        ("Y6R7T", 2.0, 8.5, "action", "a person opens the door."),
    ]
    assert skipped == {"end before start": 1, "time past the video's duration": 1,
                       "unknown video: not in the --videos catalogue": 1,
                       "malformed line: expected 'VIDEO START END##sentence'": 1, "malformed timestamp": 1}


def test_charades_sta_without_durations_names_what_is_missing(tmp_path: Path) -> None:
    """Every line skipped: no event, so nothing is written and the error says why (with the count)."""
    with pytest.raises(UserError, match="no duration: the annotation has none and no --videos catalogue gives"
                                        " one ×6"):
        run("charades_sta", "charades_sta_train.txt", tmp_path)
    assert not (tmp_path / "charades_sta").exists()


def test_qvhighlights_one_event_per_relevant_window(tmp_path: Path) -> None:
    events, skipped = run("qvhighlights", "highlight_train_release.jsonl", tmp_path)
    query = "A family is playing basketball together on a green court outside."
    assert events == [
        ("NUsG9BgSes0_210.0_360.0", 2.0, 4.0, "highlight", "Man in a hat talks to the camera."),
        ("bP5KfdFJzC4_660.0_810.0", 0.0, 16.0, "highlight", query),
        ("bP5KfdFJzC4_660.0_810.0", 40.0, 52.0, "highlight", query),
    ]
    assert skipped == {"missing field: vid": 1, "malformed JSON line": 1, "time past the video's duration": 1}


def test_youcook2(tmp_path: Path) -> None:
    events, skipped = run("youcook2", "youcookii_annotations_trainval.json", tmp_path)
    assert events == [("GLGyfWNjmSY", 90.0, 102.0, "step", "spread margarine on two slices of white bread"),
                      ("GLGyfWNjmSY", 114.0, 127.0, "step", "place a slice of cheese on the bread")]
    assert skipped == {"missing field: segment/sentence": 1, "end before start": 1, "missing field: annotations": 1}


def test_coin(tmp_path: Path) -> None:
    events, skipped = run("coin", "COIN.json", tmp_path)
    assert events == [("j1VfbLyGJY", 12.0, 38.0, "step", "melt the wax"),  # ids start with a letter or digit
                      ("j1VfbLyGJY", 45.0, 106.0, "step", "pour the wax into the mould")]
    assert skipped == {"malformed segment": 1, "time past the video's duration": 1}


def test_didemo_consensus_moment_in_five_second_units(tmp_path: Path) -> None:
    events, skipped = run("didemo", "didemo_train_data.json", tmp_path, videos="didemo_durations.json")
    assert events == [("10015567_N08_3655084291", 0.0, 10.0, "caption", "the camera pans left"),  # tie -> earliest
                      ("10015567_N08_3655084291", 10.0, 15.0, "caption", "a woman walks into view")]  # 3 of 4 say [2,2]
    assert skipped == {"end before start": 1, "malformed times: no pair of segment indices 0-5": 1,
                       "unknown video: not in the --videos catalogue": 1, "missing field: video/description/times": 1}


def test_et_instruct(tmp_path: Path) -> None:
    events, skipped = run("et_instruct", "et_instruct_164k_txt.json", tmp_path)
    assert events == [
        ("10015567_N08_3655084291", 10.0, 15.0, "highlight", "a woman walks into view"),
        ("abc", 30.5, 41.0, "qa", "Where did I put the keys?"),
        ("v_QOlSCBRmfWY", 0.8, 19.9, "caption", "A young woman is seen standing in a room"),
        ("v_QOlSCBRmfWY", 17.4, 60.8, "caption", "The girl dances around the room"),
    ]
    qa = next(r for r in iter_rows(tmp_path / "et_instruct" / "events.parquet") if r["kind"] == "qa")
    assert qa["answer"] == "On the kitchen table."
    assert skipped == {"unsupported E.T. task: vhd": 1, "malformed tvg record: an odd number of timestamps": 1,
                       "missing field: task/video/conversations": 1}


@pytest.mark.parametrize(("annotations", "expected", "skips"), [
    ("events.jsonl", [("001", 3.5, 9.0, "action", "A person cracks an egg."),
                      ("001", 10.0, 20.0, "qa", "Is the pan hot?")],
     {"missing field: end": 1, "malformed value: 'dance' is not a valid EventKind": 1, "malformed JSON line": 1,
      "no duration: the annotation has none and no --videos catalogue gives one": 1}),
    ("events.csv", [("001", 0.0, 5.0, "caption", "A car enters the garage.")],
     {"end before start": 1, "missing field: text": 1}),
])
def test_generic_jsonl_and_csv(tmp_path: Path, annotations: str, expected: list, skips: dict) -> None:
    events, skipped = run("generic", annotations, tmp_path)
    assert events == expected and skipped == skips


def test_durations_from_a_folder_of_real_videos(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "AO8RW.mp4", num_frames=340, fps=10)  # 34 s
    report = run_recipe(RECIPES["charades_sta"](), FIXTURES / "charades_sta_train.txt", tmp_path / "out", videos=videos)
    assert report.events == 2 and report.skipped["unknown video: not in the --videos catalogue"] == 4
    (record,) = [VideoRecord.model_validate(r) for r in iter_rows(tmp_path / "out" / "videos.parquet")]
    assert record.path == "AO8RW.mp4" and record.backend == "decord" and record.num_frames == 34
    assert json.loads((tmp_path / "out" / "ingest.json").read_text())["video_dir"] == str(videos.resolve())


def test_metadata_only_videos_get_a_frame_grid_from_their_duration(tmp_path: Path) -> None:
    run("youcook2", "youcookii_annotations_trainval.json", tmp_path)
    (record,) = [VideoRecord.model_validate(r) for r in iter_rows(tmp_path / "youcook2" / "videos.parquet")]
    assert (record.path, record.backend, record.num_frames) == ("GLGyfWNjmSY.mp4", "metadata", 241)


def test_cli_recipe_reports_and_refuses_unknown_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["recipe", "coin", "--annotations", str(FIXTURES / "COIN.json"),
                                      "--out", str(tmp_path / "coin")])
    assert result.exit_code == 0 and "malformed segment" in result.output
    result = CliRunner().invoke(app, ["recipe", "kinetics", "--annotations", str(FIXTURES / "COIN.json"),
                                      "--out", str(tmp_path / "k")])
    assert result.exit_code != 0 and "unknown recipe 'kinetics'" in result.output


# ---- a recipe into a work dir that already holds work --------------------------------------------------------

def _sources(work: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in iter_rows(work / "events.parquet"):
        counts[row["source"]] = counts.get(row["source"], 0) + 1
    return counts


def test_recipe_into_a_work_dir_merges_by_source(sample_videos: Path, tmp_path: Path) -> None:
    """Events of other sources (annotators, other recipes) and every ingested video stay; the recipe's own
    source is replaced, so a rerun does not duplicate it."""
    from streamo_data.runtime.runner import Executor
    from streamo_data.stages.annotate_offline import run_annotate_offline
    from streamo_data.stages.ingest import run_ingest

    work = tmp_path / "work"
    run_ingest(sample_videos, work, 1.0, Executor(kind="local"))
    run_annotate_offline(work, Executor(kind="local"))
    ingested = {row["video_id"]: row for row in iter_rows(work / "videos.parquet")}
    earlier = _sources(work)
    args = ["recipe", "youcook2", "--annotations", str(FIXTURES / "youcookii_annotations_trainval.json"),
            "--out", str(work)]
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert _sources(work) == {**earlier, "youcook2": 2}
    videos = {row["video_id"]: row for row in iter_rows(work / "videos.parquet")}
    assert {k: videos[k] for k in ingested} == ingested and len(videos) == len(ingested) + 1
    kept = run_recipe(RECIPES["charades_sta"](), FIXTURES / "charades_sta_train.txt", work,
                      videos=FIXTURES / "Charades_v1_train.csv")
    assert _sources(work) == {**earlier, "youcook2": 2, "charades_sta": kept.events}
    result = CliRunner().invoke(app, [*args, "--replace"])
    assert result.exit_code == 0 and _sources(work) == {"youcook2": 2}, result.output
    assert len(list(iter_rows(work / "videos.parquet"))) == 1


def test_recipe_at_another_fps_than_the_work_dir_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    args = ["recipe", "youcook2", "--annotations", str(FIXTURES / "youcookii_annotations_trainval.json"),
            "--out", str(work)]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = (work / "videos.parquet").read_bytes()
    result = CliRunner().invoke(app, ["recipe", "qvhighlights", "--annotations",
                                      str(FIXTURES / "highlight_train_release.jsonl"), "--out", str(work),
                                      "--fps", "2"])
    assert result.exit_code == 2 and "1 fps" in result.output and "Traceback" not in result.output, result.output
    assert (work / "videos.parquet").read_bytes() == before
