"""The multi-stage generation pipelines (streamo_data/sources/annotators/staged.py) against the real loopback
server (tests/llm_stub.py) through the real client: each stage's contract (repeats removed, negative
samples, spans that disagree, replies that fail their checks), per-stage provenance, the cache per
stage on a rerun and across a killed run, and the per-stage dry run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.runtime.runner import Executor
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.sources.annotators.staged import PIPELINES, narration_windows, temporal_iou
from streamo_data.stages.annotate_llm import ANNOTATORS, AnnotateOptions, estimate, run_llm_annotation
from streamo_data.store.tables import iter_rows
from tests.conftest import annotated_work_dir
from tests.llm_stub import StubServer

KEY_ENV = "STREAMO_TEST_LLM_KEY"
LOCAL = Executor(kind="local")
WINDOWS_PER_VIDEO = 19  # 2 s windows every 1 s over 20 s


@pytest.fixture(scope="module")
def base_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 20 s synthetic videos with two truth captions each, ingested and offline-annotated."""
    return annotated_work_dir(tmp_path_factory.mktemp("pipelines"), seed=40)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-pipelines-0000")


def options(stub: StubServer, kind: str, **extra: object) -> AnnotateOptions:
    settings = {"model": "stub-vl", "timeout_s": 5.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                "concurrency": 4}
    settings.update({k: extra.pop(k) for k in list(extra) if k in ClientSettings.model_fields})
    return AnnotateOptions(kind=kind, settings=ClientSettings(base_url=stub.base_url, api_key_env=KEY_ENV, **settings),
                           **extra)


def events_of(work: Path, source: str) -> list[dict]:
    return [r for r in iter_rows(work / "events.parquet") if r["source"] == source]


def test_registry_names_every_pipeline_with_its_stages() -> None:
    assert set(PIPELINES) == {"narration_pipeline", "caption_verified", "action_verified", "grounding_queries",
                              "ts_qa_changes"}
    assert all(ANNOTATORS[name] == stages for name, stages in PIPELINES.items())
    with pytest.raises(ValidationError, match="unknown annotator 'narration_pipe'"):
        AnnotateOptions(kind="narration_pipe", settings=ClientSettings(model="m"))


def test_windows_and_span_agreement_rules() -> None:
    assert narration_windows(20.0, 2.0, 1.0)[:2] == [(0.0, 2.0), (1.0, 3.0)]
    assert len(narration_windows(20.0, 2.0, 1.0)) == WINDOWS_PER_VIDEO and narration_windows(1.5, 2.0, 1.0) == [
        (0.0, 1.5)]
    assert narration_windows(20.5, 2.0, 1.0)[-2:] == [(18.0, 20.0), (18.5, 20.5)]  # the tail is seen too
    assert temporal_iou((2.0, 6.0), (2.0, 6.0)) == 1.0
    assert temporal_iou((2.0, 6.0), (4.0, 8.0)) == pytest.approx(1 / 3)
    assert temporal_iou((2.0, 6.0), (7.0, 8.0)) == 0.0


def test_narration_pipeline_removes_repeats_and_keeps_per_stage_provenance(work: Path, stub: StubServer) -> None:
    report = run_llm_annotation(work, options(stub, "narration_pipeline"), LOCAL)
    # one request per window and one rewrite per video; the cache is content-addressed, so a request
    # identical to one already answered (the two videos' first frames are the same background, and
    # the stub's notes depend on time only, so their rewrites are word for word the same) is a hit
    assert report.usage.sent + report.usage.cached == 2 * WINDOWS_PER_VIDEO + 2
    assert stub.state.received["schema:narration_window_reply"] + stub.state.received[
        "schema:narration_rewrite_reply"] == report.usage.sent == stub.state.received["chat"]
    narration = events_of(work, "llm:narration_pipeline")
    # the window notes repeat within each 5 s; the rewrite keeps each change once, at its first window
    assert report.events == len(narration) == 8 and not report.rejects
    assert sorted({e["start_s"] for e in narration}) == [0.0, 5.0, 10.0, 15.0]
    assert all(e["kind"] == "narration" and e["start_s"] == e["end_s"] for e in narration)
    params = json.loads(narration[0]["provenance"])["params"]
    for stage in ("narration_window", "narration_rewrite"):
        assert params[f"{stage}.model"] == "stub-vl" and len(params[f"{stage}.prompt_hash"]) == 64
    assert params["window_s"] == "2" and params["step_s"] == "1" and params["narration_window.frames"] == "2"


def test_a_negative_sample_rejects_the_whole_video_and_is_counted(stub: StubServer, tmp_path: Path) -> None:
    from streamo_data.sources.sample_data import make_synthetic_video
    from streamo_data.stages.ingest import run_ingest

    videos = tmp_path / "videos"  # two lengths, so the two rewrites are two different requests
    videos.mkdir()
    for k, duration in enumerate((8, 6)):
        make_synthetic_video(videos / f"clip_{k}.mp4", seed=k, duration_s=duration, size=(64, 48), num_events=1)
    work = tmp_path / "work"
    run_ingest(videos, work, 1.0, LOCAL)
    stub.inject("negative", schema="narration_rewrite_reply")
    report = run_llm_annotation(work, options(stub, "narration_pipeline"), LOCAL)
    assert stub.state.received["schema:narration_rewrite_reply"] == 2
    assert report.rejects == {"negative sample: a static scene with nothing to narrate": 1}
    assert report.videos == 2 and len({e["video_id"] for e in events_of(work, "llm:narration_pipeline")}) == 1
    rejects = (work / "annotate_narration_pipeline_rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 1 and "clip_" in json.loads(rejects[0])["job"]


@pytest.mark.parametrize("kind", ["caption_verified", "action_verified"])
def test_captions_whose_spans_disagree_are_dropped_and_counted(work: Path, stub: StubServer, kind: str) -> None:
    stage = kind.split("_")[0]
    stub.inject("disagree", schema=f"{stage}_ground_reply")
    report = run_llm_annotation(work, options(stub, kind, concurrency=1), LOCAL)
    assert stub.state.received[f"schema:{stage}_segment_reply"] == 4  # one per truth segment
    assert stub.state.received[f"schema:{stage}_ground_reply"] == 4
    kept = events_of(work, f"llm:{kind}")
    assert report.events == len(kept) == 3
    (reason,) = report.rejects
    assert reason.startswith("spans disagree") and "(temporal IoU N < N)" in reason and report.rejects[reason] == 1
    assert all(e["kind"] == ("caption" if stage == "caption" else "action") for e in kept)
    for event in kept:
        params = json.loads(event["provenance"])["params"]
        assert params["span_iou"] == "1.000" and params["min_span_iou"] == "0.5"
        assert params["grounded_span"] == f"{event['start_s']:g}-{event['end_s']:g}"
        assert f"{stage}_segment.prompt_hash" in params and f"{stage}_ground.prompt_hash" in params


def test_grounding_queries_keep_the_caption_span_and_feed_grounding(work: Path, stub: StubServer) -> None:
    from streamo_data.stages.build import run_build

    report = run_llm_annotation(work, options(stub, "grounding_queries", text_model="stub-text"), LOCAL)
    queries = events_of(work, "llm:grounding_queries")
    truth = {(e["video_id"], e["start_s"], e["end_s"]): e["text"] for e in events_of(work, "offline:truth")}
    assert report.events == len(queries) == 4
    for query in queries:
        caption = truth[(query["video_id"], query["start_s"], query["end_s"])]
        assert query["text"] == "the moment " + caption.rstrip(".").lower() and query["kind"] == "highlight"
        assert json.loads(query["provenance"])["params"]["grounding_query.model"] == "stub-text"
    summary = run_build(work, ["temporal_grounding"], 0, LOCAL)
    assert summary.produced["temporal_grounding"] >= 4


def test_time_sensitive_qa_from_changes_feeds_the_streaming_task(work: Path, stub: StubServer) -> None:
    from streamo_data.stages.build import run_build

    report = run_llm_annotation(work, options(stub, "ts_qa_changes"), LOCAL)
    qa = events_of(work, "llm:ts_qa_changes")
    assert report.events == len(qa) == 6 and {e["answer"] for e in qa} == {"One.", "Two.", "Three."}
    assert sorted({e["start_s"] for e in qa}) == [4.0, 10.0, 16.0]
    summary = run_build(work, ["time_sensitive_qa"], 0, LOCAL)
    assert summary.produced["time_sensitive_qa"] >= 2


@pytest.mark.parametrize(("kind", "fault", "schema", "reason"), [
    ("narration_pipeline", "malformed", "narration_window_reply", "Invalid JSON"),
    ("narration_pipeline", "bad_times", "narration_rewrite_reply", "outside the video"),
    ("caption_verified", "bad_times", "caption_ground_reply", "outside the video"),
    ("grounding_queries", "repeat", "grounding_query_reply", "repeats the caption"),
    ("ts_qa_changes", "repeat", "ts_qa_changes_reply", "the same as the one before it"),
    ("ts_qa_changes", "bad_times", "ts_qa_changes_reply", "outside the video"),
])
def test_a_stage_reply_that_fails_its_checks_is_retried_once_then_rejected(
    work: Path, stub: StubServer, kind: str, fault: str, schema: str, reason: str
) -> None:
    stub.inject(fault, schema=schema)  # the first reply is bad, its retry is fine
    first = run_llm_annotation(work, options(stub, kind, concurrency=1), LOCAL)
    assert not first.rejects and first.usage.retries == 0 and first.events > 0
    assert any("That reply is not valid" in prompt and reason in prompt for prompt in stub.state.prompts)

    stub.inject(fault, count=100, schema=schema)  # every reply of that stage is bad: rejected with the reason
    report = run_llm_annotation(work, options(stub, kind, concurrency=1, model="other"), LOCAL)
    (rejected,) = report.rejects
    stage = schema.removesuffix("_reply")
    assert rejected.startswith(f"{stage}: invalid reply after one retry") and reason in rejected
    assert report.events == 0 and sum(report.rejects.values()) == first.jobs
    stub.state.faults.clear()


def test_every_pipeline_reruns_from_the_cache_alone(work: Path, stub: StubServer) -> None:
    for kind in PIPELINES:
        first = run_llm_annotation(work, options(stub, kind), LOCAL)
        before = stub.state.received["chat"]
        second = run_llm_annotation(work, options(stub, kind), LOCAL)
        assert stub.state.received["chat"] == before, kind  # 100% cache hits: nothing sent
        assert second.usage.sent == 0 and second.usage.cached == first.usage.sent + first.usage.cached > 0, kind
        assert second.events == first.events and second.rejects == first.rejects, kind


def test_dry_run_estimates_per_stage_and_sends_nothing(work: Path, stub: StubServer) -> None:
    report = estimate(work, options(stub, "caption_verified", price_input_per_million=1.0))
    assert report.stages.keys() == {"caption_segment", "caption_ground"} and report.estimated_requests == 8
    assert all(tally["requests"] == 4 and tally["cost"] > 0 for tally in report.stages.values())
    result = CliRunner().invoke(app, ["annotate", "narration-pipeline", str(work), "--model", "m", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"{2 * WINDOWS_PER_VIDEO + 2} requests" in result.output
    assert f"stage narration_window: {2 * WINDOWS_PER_VIDEO} requests" in result.output
    assert "stage narration_rewrite: 2 requests" in result.output and stub.state.received["chat"] == 0


def test_bad_pipeline_options_and_prompts_are_one_line(work: Path, stub: StubServer, tmp_path: Path) -> None:
    from streamo_data.sources.annotators.prompts import prompts_dir

    common = [str(work), "--model", "m", "--base-url", stub.base_url, "--api-key-env", KEY_ENV, "--executor",
              "local"]
    result = CliRunner().invoke(app, ["annotate", "caption-verified", *common, "--min-span-iou", "1.5"])
    assert result.exit_code == 2 and "invalid --min-span-iou 1.5" in result.output
    edited = tmp_path / "prompts"
    edited.mkdir()
    for path in prompts_dir().glob("*.md"):
        (edited / path.name).write_text(path.read_text())
    ground = edited / "caption_ground.md"
    ground.write_text(ground.read_text().replace("output: caption_ground_reply", "output: caption_segment_reply"))
    result = CliRunner().invoke(app, ["annotate", "caption-verified", *common, "--prompts", str(edited)])
    assert result.exit_code == 2 and "output must be caption_ground_reply" in result.output
    assert "Traceback" not in result.output and stub.state.received["chat"] == 0


def test_a_pipeline_killed_midway_resends_nothing_that_was_answered(work: Path) -> None:
    command = [sys.executable, "-m", "streamo_data.cli", "annotate", "caption-verified", str(work), "--model",
               "stub-vl", "--api-key-env", KEY_ENV, "--concurrency", "1", "--executor", "local"]
    env = {**os.environ, KEY_ENV: "sk-test-pipelines-0000"}
    with StubServer(service_time=0.4) as slow:
        process = subprocess.Popen([*command, "--base-url", slow.base_url], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while slow.state.received["chat"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        answered = len(list((work / "llm_cache").glob("*/*.json")))
        assert 1 <= answered < 8, "the kill should land midway"
        sent_before = slow.state.received["chat"]
        done = subprocess.run([*command, "--base-url", slow.base_url], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert slow.state.received["chat"] - sent_before == 8 - answered
    assert len(events_of(work, "llm:caption_verified")) == 4


def test_batch_api_answers_the_first_stage_then_the_online_pass_finishes(work: Path, stub: StubServer) -> None:
    result = CliRunner().invoke(app, ["annotate", "caption-verified", str(work), "--model", "stub-vl", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--batch", "--executor", "local"])
    assert result.exit_code == 0, result.output
    assert stub.state.received["batch"] == 1 and "submitted 4 requests" in result.output
    # the captions came from the batch; only their grounding (which needs the captions) went online
    assert stub.state.received["schema:caption_segment_reply"] == 0
    assert stub.state.received["schema:caption_ground_reply"] == 4
    assert len(events_of(work, "llm:caption_verified")) == 4


def test_ray_actor_pool_gives_the_same_pipeline_events(work: Path, stub: StubServer, tmp_path: Path) -> None:
    import shutil

    import ray

    local_work = tmp_path / "local"
    shutil.copytree(work, local_work)
    run_llm_annotation(local_work, options(stub, "caption_verified", min_span_iou=0.7), LOCAL)
    try:
        report = run_llm_annotation(work, options(stub, "caption_verified", min_span_iou=0.7),
                                    Executor(kind="ray", num_cpus=2))
    finally:
        ray.shutdown()
    assert report.usage.sent == 8  # its own cache: every stage's request went through the actors
    ray_events = events_of(work, "llm:caption_verified")
    assert ray_events == events_of(local_work, "llm:caption_verified") and len(ray_events) == 4
    assert json.loads(ray_events[0]["provenance"])["params"]["min_span_iou"] == "0.7"


def test_verified_captions_skip_queries_they_generated_even_when_renamed(stub: StubServer) -> None:
    """A mixture renames generated events to ``<source>:<annotator>``: what a grounding-query stage made is
    recognised by its provenance, not by its source name, so verified captions never caption a query."""
    from streamo_data.core.schema import Event, EventKind, Provenance, VideoRecord, VideoStatus
    from streamo_data.stages.annotate_llm import _annotator, load_prompts

    video = VideoRecord(video_id="v-1", path="v.mp4", status=VideoStatus.OK, duration_s=30.0, native_fps=10,
                        num_native_frames=300, width=64, height=48, sample_fps=1.0, num_frames=30)
    caption = Event.create(video_id="v-1", duration_s=30.0, start_s=2, end_s=8, text="A dog runs.",
                           kind=EventKind.CAPTION, source="anet")
    query = Event.create(video_id="v-1", duration_s=30.0, start_s=12, end_s=20, text="dog running",
                         kind=EventKind.HIGHLIGHT, source="koala:queries",
                         provenance=Provenance(model="m", params={"grounding_query.model": "m"}))
    opts = options(stub, "caption_verified")
    annotator = _annotator(opts, None, Path("."), load_prompts(opts))
    spans = [(job.start, job.end) for job in annotator.jobs(video, [caption, query], 10.0)]
    assert spans == [(2.0, 8.0)]
