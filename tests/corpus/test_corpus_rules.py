"""The rules that decide what a corpus keeps: end tolerance, paraphrase moments, canonical numbers,
the split guarantee, and timing metrics that count false alarms (issue 8's data-loss findings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamo_data.core.align import place_instant, place_span
from streamo_data.core.moments import SAME_MOMENT_IOU, assign_moments, temporal_iou
from streamo_data.core.schema import Event, QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.corpus.split import hash_order, validation_videos
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.store.tables import iter_rows
from streamo_data.train.evaluate import fill
from streamo_data.train.metrics import timing_errors

CHARADES_CSV = "id,length\nAAAAA,30.0\nBBBBB,20.0\n"


def charades(tmp_path: Path, lines: str) -> tuple[list[Event], dict[str, int]]:
    (tmp_path / "charades_sta_train.txt").write_text(lines, encoding="utf-8")
    (tmp_path / "charades.csv").write_text(CHARADES_CSV, encoding="utf-8")
    report = run_recipe(RECIPES["charades_sta"](), tmp_path / "charades_sta_train.txt", tmp_path / "work",
                        videos=tmp_path / "charades.csv")
    events = [Event.model_validate({**r, "provenance": None}) for r in iter_rows(tmp_path / "work" / "events.parquet")]
    return events, dict(report.skipped)


def test_charades_sta_ends_up_to_two_seconds_past_the_length_are_clipped(tmp_path: Path) -> None:
    events, skipped = charades(tmp_path, "AAAAA 25.0 31.5##person sits down.\n"
                                         "AAAAA 25.0 32.5##person is far too late.\n"
                                         "BBBBB 3.0 21.9##person opens a window.\n")
    assert sorted((e.start_s, e.end_s) for e in events) == [(3.0, 20.0), (25.0, 30.0)]
    assert skipped == {"time past the video's duration": 1}


def test_paraphrases_share_a_moment_and_distinct_moments_do_not(tmp_path: Path) -> None:
    events, _ = charades(tmp_path, "AAAAA 1.0 5.0##person runs away.\n"
                                   "AAAAA 1.0 5.0##person runs out of the room.\n"
                                   "AAAAA 1.5 5.5##a person runs away quickly.\n"
                                   "AAAAA 4.0 12.0##person opens a door.\n"
                                   "BBBBB 1.0 5.0##person runs away.\n")
    moment = {(e.video_id[:5], e.text): e.moment for e in events}
    runs = {moment[k] for k in moment if k[0] == "AAAAA" and "run" in k[1]}
    assert len(runs) == 1 and None not in runs
    assert moment[("AAAAA", "person opens a door.")] not in runs
    assert moment[("BBBBB", "person runs away.")] not in runs  # moments never cross videos


def test_sources_without_paraphrases_keep_one_moment_per_event(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text('{"v_x": {"duration": 50.0, "timestamps": [[0, 40], [5, 40]],'
                                        ' "sentences": ["A man runs.", "He keeps running."]}}', encoding="utf-8")
    run_recipe(RECIPES["activitynet_captions"](), tmp_path / "train.json", tmp_path / "work")
    assert [r["moment"] for r in iter_rows(tmp_path / "work" / "events.parquet")] == [None, None]


def test_the_iou_rule() -> None:
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert temporal_iou((2, 2), (2, 2)) == 1.0 and temporal_iou((2, 2), (3, 3)) == 0.0
    # compared with the moment's first description, so a chain of small shifts does not grow one moment
    spans = [(0.0, 10.0), (3.0, 13.0), (6.0, 16.0)]
    assert temporal_iou(spans[0], spans[1]) >= SAME_MOMENT_IOU and temporal_iou(spans[0], spans[2]) < SAME_MOMENT_IOU
    assert assign_moments(spans, ["a", "b", "c"]) == ["a", "a", "c"]


# ---- the last-frame rule, on its own ---------------------------------------------------------------------

def test_place_span_and_instant() -> None:
    assert place_span(2, 5, 10, 1.0).end_time == 5  # answerable: unchanged
    moved = place_span(2, 10, 10, 1.0)
    assert (moved.st_time, moved.end_time, moved.moved) == (2, 9.0, True)  # answers on frame 9
    assert place_span(9.5, 10, 10, 1.0).time == 10  # starts on the last frame: an instant there
    assert place_span(10.2, 10.6, 10, 1.0) is None  # never on the stream
    assert place_span(0, 0.5, 1, 1.0).time == 0.5  # a one-frame video still answers
    assert place_instant(10.8, 9.5, 10, 1.0).time == 10.0
    assert place_instant(10.8, 10.1, 10, 1.0) is None


# ---- canonical numbers -------------------------------------------------------------------------------------

def sample(fps: object = 1.0, num_frames: object = 10, end: float = 4.0) -> StreamingSample:
    return StreamingSample.create(
        task="temporal_grounding", source="test", video_id="v-1", video_path="a/v.mp4", duration_s=10.0,
        fps=fps, num_frames=num_frames, questions=[QuestionTurn(content="When?", time=0)],  # type: ignore[arg-type]
        responses=[ResponseTurn(content="Then.", st_time=0.3, end_time=end)])


def test_sample_create_takes_int_and_numpy_numbers_and_one_time_has_one_id() -> None:
    reference = sample()
    assert sample(fps=1).sample_id == reference.sample_id
    assert sample(fps=np.float32(1.0), num_frames=np.int64(10)).sample_id == reference.sample_id
    assert sample(end=0.1 + 0.2 + 3.7).sample_id == sample(end=4.0).sample_id  # 4.000000000000001
    turn = ResponseTurn(content="x", st_time=0.1 + 0.2, end_time=1)
    assert turn.st_time == 0.3
    a = Event.create(video_id="v", duration_s=5, start_s=0.1 + 0.2, end_s=1, text="t", kind="caption", source="s")
    b = Event.create(video_id="v", duration_s=5, start_s=0.3, end_s=1.0, text="t", kind="caption", source="s")
    assert a.event_id == b.event_id


# ---- the split: no task without train videos -------------------------------------------------------------

def test_no_task_ends_with_all_its_videos_in_validation() -> None:
    videos = {f"v{i}" for i in range(10)}
    first = hash_order(videos | {"x"}, 0)[0]  # the video that the hash rule holds out
    by_task = {"big": (videos | {"x"}) - {first}, "tiny": {first}}
    held = validation_videos(by_task, 0.05, seed=0)
    for task, ids in by_task.items():
        assert ids - held, f"{task} has no train video"
    assert by_task["big"] & held  # validation kept where it empties no task's train split


# ---- timing metrics ------------------------------------------------------------------------------------

def test_answering_on_every_frame_does_not_score_perfect_timing() -> None:
    truth = [np.array([0, 0, 0, 2, 0, 0, 0, 0, 2, 0])]
    always = [np.full(10, 2)]
    timing = timing_errors(always, truth)
    assert timing["within_1_frame"] == 1.0 and timing["false_alarms"] == 8
    assert timing["precision_within_1"] == pytest.approx(0.2) and timing["f1_within_1"] == pytest.approx(1 / 3)
    exact = timing_errors(truth, truth)
    assert exact["f1_within_1"] == 1.0 and exact["false_alarms"] == 0
    # one predicted response explains one true response only
    lone = timing_errors([np.array([0, 0, 0, 0, 0, 2, 0, 0, 0, 0])], truth)
    assert lone["missed"] == 1 and lone["false_alarms"] == 0


def test_a_predicted_span_is_written_with_the_times_its_labels_mean() -> None:
    # evidence 3 s - 7 s at 1 fps: standby on frames 2..6, response on frame 7 (the alignment rule)
    states = np.array([0, 0, 1, 1, 1, 1, 1, 2, 0, 0])
    assert fill("From {t} to {t}.", states, 7, 1.0) == "From 3s to 7s."
    states2 = np.array([0] * 6 + [1] * 8 + [2] + [0] * 5)  # the same span at 2 fps
    assert fill("From {t} to {t}.", states2, 14, 2.0) == "From 3.5s to 7s."


# ---- build: what a builder leaves out is reported as what it is ------------------------------------------

def test_build_reports_unplaceable_answers_as_not_built_not_as_failures(tmp_path: Path) -> None:
    from streamo_data.runtime.runner import Executor
    from streamo_data.stages.build import run_build

    lines = ['{"video": "a", "start": 2, "end": 6, "text": "A door opens.", "duration": 20.6}',
             '{"video": "a", "start": 15, "end": 20.6, "text": "It closes at the very end.", "duration": 20.6}',
             '{"video": "a", "start": 20.2, "end": 20.6, "text": "Only in the tail.", "duration": 20.6}']
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_recipe(RECIPES["generic"](), tmp_path / "events.jsonl", tmp_path / "work")
    summary = run_build(tmp_path / "work", ["dense_captioning", "temporal_grounding"], 0, Executor(kind="local"))
    assert not summary.failed
    assert summary.produced == {"dense_captioning": 1, "temporal_grounding": 2}
    assert sum(summary.not_built.values()) == 2 and all("never shows it" in k for k in summary.not_built)


def test_a_reimported_annotation_file_updates_the_videos_it_alone_describes(tmp_path: Path) -> None:
    line = '{{"video": "a", "start": 2, "end": 6, "text": "A door opens.", "duration": {duration}}}\n'
    (tmp_path / "events.jsonl").write_text(line.format(duration=20.0), encoding="utf-8")
    run_recipe(RECIPES["generic"](), tmp_path / "events.jsonl", tmp_path / "work")
    (tmp_path / "events.jsonl").write_text(line.format(duration=30.0), encoding="utf-8")  # a corrected file
    run_recipe(RECIPES["generic"](), tmp_path / "events.jsonl", tmp_path / "work")
    (video,) = list(iter_rows(tmp_path / "work" / "videos.parquet"))
    (event,) = list(iter_rows(tmp_path / "work" / "events.parquet"))
    assert video["duration_s"] == event["duration_s"] == 30.0 and video["num_frames"] == 30
