"""`streamo export raw`: a release in the released Streamo-Instruct layout, read back by the streamo_release
recipe (the events are what the samples said) and by the reference converter (at 1 fps and whole seconds it
writes exactly what `export stream-format` writes for the same samples)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.schema import Event, QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.exports.raw_layout import RELEASE_SOURCES, RELEASE_TASK_TYPES, TASK_FOLDERS
from streamo_data.release.read import iter_release_samples
from streamo_data.release.write import write_release
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.sources.recipes.streamo_release import FOLDER_KINDS
from streamo_data.store.tables import from_row, iter_rows, to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for
from tests.conftest import write_video

Q, R = QuestionTurn, ResponseTurn
TURNS = {  # task: (source, questions, responses), whole seconds at 1 fps
    "narration": ("generic", [Q(content="Narrate.", time=0)],
                  [R(content="A man enters.", time=2), R(content="He sits.", time=4)]),
    "dense_captioning": ("activitynet_captions", [Q(content="Describe each event.", time=0)],
                         [R(content="A girl dances.", st_time=1, end_time=3),
                          R(content="She bows.", st_time=5, end_time=7)]),
    "action_captioning": ("coin", [Q(content="Say each step.", time=0)],
                          [R(content="Cut the bread.", st_time=2, end_time=6)]),
    "temporal_grounding": ("qvhighlights", [Q(content="Tell me when the dog jumps.", time=0)],
                           [R(content="The dog jumps.", st_time=2, end_time=5)]),
    "time_sensitive_qa": ("generic", [Q(content="What is he holding?", time=0), Q(content="And now?", time=5)],
                          [R(content="A cup.", time=3), R(content="A knife.", time=7)]),
    "offline_qa": ("llava_video", [Q(content="What color is the car?", time=0)],
                   [R(content="Red.", st_time=0, end_time=6)]),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "a.mp4", 100, 10.0)  # 10 s: 10 frames at 1 fps
    write_video(folder / "b.mp4", 80, 10.0)  # 8 s
    return folder


@pytest.fixture(scope="module")
def release(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    rows = []
    for name, duration in (("a.mp4", 10), ("b.mp4", 8)):
        for task, (source, questions, responses) in TURNS.items():
            rows.append(to_row(StreamingSample.create(
                task=task, source=source, video_id=video_id_for(name), video_path=name, duration_s=duration, fps=1.0,
                num_frames=duration, questions=questions, responses=responses)))
    write_rows(root / "work" / SAMPLES, StreamingSample, rows)
    write_release(root / "work" / SAMPLES, root / "release", rows_per_shard=2, validation_fraction=0.5)
    return root / "release"


def export(release: Path, out: Path, *extra: str) -> object:
    return CliRunner().invoke(app, ["export", "raw", str(release), "--out", str(out), *extra])


def expected_events(sample: StreamingSample) -> list[tuple]:
    """What a sample says, by the streamo_release recipe's documented rule."""
    folder = TASK_FOLDERS[sample.task]
    found = []
    for response in sample.responses:
        start, end = (response.st_time, response.end_time) if response.st_time is not None else (
            response.time, response.time)
        if folder in ("qa", "event_grounding"):
            text = [q.content for q in sample.questions if q.time <= end][-1]
            answer: str | None = response.content
        else:
            text, answer = response.content, None
        found.append((sample.video_id, start, end, FOLDER_KINDS[folder].value, text, answer,
                      RELEASE_SOURCES.get(sample.source, sample.source), RELEASE_TASK_TYPES.get(folder, folder)))
    return found


def test_layout_names_and_the_round_trip_through_the_recipe(release: Path, videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    result = export(release, out)
    assert result.exit_code == 0, result.output
    samples = list(iter_release_samples(release))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json") if p.name != "streamo_export.json")
    assert {f.split("/")[0] for f in files} == {"qa", "event_grounding", "event_caption", "action_caption",
                                                 "narration"}
    records = [r for f in files for r in json.loads((out / f).read_text(encoding="utf-8"))]
    assert len(records) == len(samples) == 12
    by_sample = {(s.video_path, s.questions[0].content): s for s in samples}
    for record in records:
        sample = by_sample[(record["video_path"], record["question"][0]["content"])]
        folder = TASK_FOLDERS[sample.task]
        assert record == {**sample.to_raw(), "task_type": RELEASE_TASK_TYPES.get(folder, folder),
                          "source": RELEASE_SOURCES.get(sample.source, sample.source)}
    assert {r["source"] for r in records} == {"generic", "ActivityNet", "coin", "QVHighlight", "LLaVA_Video"}

    run_recipe(RECIPES["streamo_release"](), out, tmp_path / "work", videos=videos)
    read = [from_row(Event, row) for row in iter_rows(tmp_path / "work" / "events.parquet")]
    events = sorted((e.video_id, e.start_s, e.end_s, e.kind.value, e.text, e.answer, e.provenance.params["source"],
                     e.provenance.params["task_type"]) for e in read if e.provenance)
    assert events == sorted(e for s in samples for e in expected_events(s))


def test_the_reference_converter_reads_the_export_as_export_stream_format_writes_it(
        release: Path, videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    assert export(release, out, "--our-names").exit_code == 0
    converted = []
    for file in sorted(out.rglob("*.json")):
        if file.name == "streamo_export.json":
            continue
        target = tmp_path / f"{file.parent.name}_{file.stem}.jsonl"
        result = CliRunner().invoke(app, ["convert", "raw-to-stream", str(file), "--out", str(target),
                                          "--video-root", str(videos), "--workers", "1"])
        assert result.exit_code == 0, result.output
        converted += target.read_text(encoding="utf-8").splitlines()
    stream = tmp_path / "stream.jsonl"
    result = CliRunner().invoke(app, ["export", "stream-format", str(release), "--out", str(stream),
                                      "--video-root", str(videos)])
    assert result.exit_code == 0, result.output
    expected = stream.read_text(encoding="utf-8").splitlines()
    assert len(expected) == 12 and sorted(converted) == sorted(expected)


def test_a_folder_holding_other_work_is_refused_and_an_earlier_export_is_replaced(
        release: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = export(release, other)
    assert result.exit_code == 2 and "not an earlier `streamo export raw`" in result.output
    assert "Traceback" not in result.output and sorted(p.name for p in other.iterdir()) == ["notes.txt"]

    out = tmp_path / "raw"
    assert export(release, out).exit_code == 0
    stale = out / "qa" / "stale.json"
    stale.write_text("[]")
    assert export(release, out).exit_code == 0
    assert not stale.exists() and (out / "streamo_export.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
