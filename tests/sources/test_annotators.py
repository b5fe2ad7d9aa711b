"""LLM annotators against a real OpenAI-compatible HTTP server on loopback (tests/llm_stub.py), through
the real `openai` client, never patched: structured output, every fault the stub can inject, the cache
across a killed run, the Batch API, the Ray actor pool, and the API key kept out of everything."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.runtime.runner import Executor
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.sources.annotators.limits import TokenBucket
from streamo_data.sources.annotators.prompts import prompts_dir
from streamo_data.stages.annotate_llm import AnnotateOptions, estimate, run_llm_annotation
from streamo_data.store.tables import iter_rows
from tests.conftest import annotated_work_dir
from tests.llm_stub import StubServer

KEY_ENV = "STREAMO_TEST_LLM_KEY"
KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
LOCAL = Executor(kind="local")


@pytest.fixture(scope="module")
def base_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic videos (with their truth events), ingested and offline-annotated."""
    return annotated_work_dir(tmp_path_factory.mktemp("llm"), seed=40)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def options(stub: StubServer, kind: str = "caption", **settings: object) -> AnnotateOptions:
    defaults = {"model": "stub-vl", "timeout_s": 5.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                "concurrency": 4}
    return AnnotateOptions(kind=kind, settings=ClientSettings(base_url=stub.base_url, api_key_env=KEY_ENV,
                                                              **{**defaults, **settings}))


def events_of(work: Path, source_prefix: str) -> list[dict]:
    return [r for r in iter_rows(work / "events.parquet") if r["source"].startswith(source_prefix)]


def test_caption_events_carry_their_provenance(work: Path, stub: StubServer) -> None:
    report = run_llm_annotation(work, options(stub), LOCAL)
    captions = events_of(work, "llm:caption")
    assert report.jobs == 4 and report.events == len(captions) == 4  # one per truth event, 2 per video
    assert report.usage.sent == 4 and report.usage.failed == 0 and not report.rejects
    for event in captions:
        assert event["text"] == f"A scene from {event['start_s']:g}s to {event['end_s']:g}s, seen in 8 frames."
        provenance = json.loads(event["provenance"])
        assert provenance["model"] == "stub-vl"
        assert provenance["prompt_hash"] == hashlib.sha256((prompts_dir() / "caption.md").read_bytes()).hexdigest()
        assert provenance["params"]["temperature"] == "0.2" and provenance["params"]["frames"] == "8"
    assert len(events_of(work, "offline:")) == 4  # earlier events are kept


def test_narration_and_qa_feed_the_streaming_tasks(work: Path, stub: StubServer) -> None:
    from streamo_data.stages.build import run_build

    run_llm_annotation(work, options(stub, "narration"), LOCAL)
    run_llm_annotation(work, options(stub, "qa"), LOCAL)
    narration = events_of(work, "llm:narration")
    assert len(narration) == 6 and all(e["start_s"] == e["end_s"] for e in narration)
    qa = events_of(work, "llm:qa")
    assert {e["source"] for e in qa} == {"llm:qa:time_sensitive", "llm:qa:offline"}
    summary = run_build(work, ["narration", "time_sensitive_qa", "offline_qa"], 0, LOCAL)
    assert summary.produced["time_sensitive_qa"] >= 2 and summary.produced["offline_qa"] >= 2
    assert summary.produced["narration"] >= 2


def test_429_with_retry_after_is_honoured(work: Path, stub: StubServer) -> None:
    stub.inject("429", count=2, retry_after=0.6)
    started = time.monotonic()
    report = run_llm_annotation(work, options(stub, concurrency=1), LOCAL)
    assert time.monotonic() - started >= 1.2  # two waits of 0.6 s, as the server asked
    assert report.usage.retries == 2 and report.usage.retry_reasons == {"HTTP 429": 2}
    assert report.events == 4 and not report.rejects


def test_500_is_retried_with_backoff_then_given_up_with_a_reason(work: Path, stub: StubServer) -> None:
    stub.inject("500", count=2)
    report = run_llm_annotation(work, options(stub, concurrency=1), LOCAL)
    assert report.usage.retry_reasons == {"HTTP 500": 2} and report.events == 4

    stub.inject("500", count=100)
    fresh = options(stub, concurrency=1, max_attempts=3, model="another-model")
    report = run_llm_annotation(work, fresh, LOCAL)
    assert report.events == 0 and report.usage.failed == 4
    assert report.rejects == {"request failed: gave up after N attempts (last: HTTP N)": 4}
    stub.state.faults.clear()


def test_a_reply_slower_than_the_timeout_is_retried(work: Path, stub: StubServer) -> None:
    stub.inject("slow", seconds=3.0)
    report = run_llm_annotation(work, options(stub, concurrency=1, timeout_s=0.8), LOCAL)
    assert report.usage.retry_reasons == {"timeout": 1} and report.events == 4


@pytest.mark.parametrize(("fault", "kind", "reason"), [
    ("malformed", "caption", "Invalid JSON"),
    ("bad_times", "narration", "outside the video"),
    ("bad_times", "qa", "outside the video"),
    ("empty", "caption", "the reply is empty"),
])
def test_invalid_replies_are_retried_once_with_the_error_then_rejected(
    work: Path, stub: StubServer, fault: str, kind: str, reason: str
) -> None:
    stub.inject(fault)  # the first reply is bad, its retry is fine
    report = run_llm_annotation(work, options(stub, kind, concurrency=1), LOCAL)
    assert not report.rejects and report.usage.sent == report.jobs + 1
    assert any("That reply is not valid" in prompt and reason in prompt for prompt in stub.state.prompts)

    stub.inject(fault, count=100)  # every reply and every retry is bad: each job rejected with the reason
    report = run_llm_annotation(work, options(stub, kind, concurrency=1, model="other"), LOCAL)
    (rejected,) = report.rejects
    assert rejected.startswith("invalid reply after one retry") and reason in rejected
    assert report.rejects[rejected] == report.jobs and report.usage.sent == 2 * report.jobs
    rejects = (work / f"annotate_{kind}_rejects.jsonl").read_text().splitlines()
    assert len(rejects) == report.jobs and "clip_" in json.loads(rejects[0])["job"]
    stub.state.faults.clear()


def test_concurrency_is_bounded_and_the_rate_limiter_waits() -> None:
    async def timed() -> float:
        bucket = TokenBucket(6000)  # 100 tokens a second, bursts of a second's worth
        await bucket.take(100)
        started = time.monotonic()
        await bucket.take(50)
        return time.monotonic() - started

    assert 0.4 <= asyncio.run(timed()) < 5.0


def test_in_flight_requests_never_exceed_the_concurrency(work: Path) -> None:
    with StubServer(service_time=0.3) as slow:
        run_llm_annotation(work, options(slow, concurrency=2), LOCAL)
        assert slow.state.max_in_flight == 2


def test_rerun_is_served_from_the_cache(work: Path, stub: StubServer) -> None:
    first = run_llm_annotation(work, options(stub), LOCAL)
    before = stub.state.received["chat"]
    second = run_llm_annotation(work, options(stub), LOCAL)
    assert stub.state.received["chat"] == before and second.usage.cached == first.usage.sent
    assert len(events_of(work, "llm:caption")) == first.events  # merged, not duplicated


def test_a_run_killed_midway_resends_nothing_that_was_answered(work: Path) -> None:
    command = [sys.executable, "-m", "streamo_data.cli", "annotate", "caption", str(work), "--model", "stub-vl",
               "--api-key-env", KEY_ENV, "--concurrency", "1", "--executor", "local"]
    with StubServer(service_time=0.4) as slow:
        process = subprocess.Popen([*command, "--base-url", slow.base_url], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ, KEY_ENV: KEY})
        deadline = time.monotonic() + 60
        while slow.state.received["chat"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        answered = len(list((work / "llm_cache").glob("*/*.json")))
        assert 1 <= answered < 4, "the kill should land midway"
        sent_before = slow.state.received["chat"]
        done = subprocess.run([*command, "--base-url", slow.base_url], capture_output=True, text=True,
                              env={**os.environ, KEY_ENV: KEY})
        assert done.returncode == 0, done.stdout + done.stderr
        assert slow.state.received["chat"] - sent_before == 4 - answered
    assert len(events_of(work, "llm:caption")) == 4


def test_the_api_key_never_appears_in_logs_caches_or_outputs(
    work: Path, stub: StubServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.inject("429", retry_after=0.1)
    stub.inject("401")  # a server that echoes the rejected key in its error message
    result = CliRunner().invoke(app, ["annotate", "caption", str(work), "--model", "stub-vl", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--executor", "local"])
    assert result.exit_code == 0
    assert f"Bearer {KEY}" in stub.state.authorizations  # it was sent, to the server only
    assert "Incorrect API key provided" in result.output and "***" in result.output
    seen = result.output + caplog.text + "".join(capsys.readouterr())
    for path in work.rglob("*"):
        if path.is_file():
            seen += path.read_bytes().decode("utf-8", "replace")
    assert KEY not in seen and KEY[3:] not in seen


def test_a_missing_key_is_a_clear_error(work: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    result = CliRunner().invoke(app, ["annotate", "qa", str(work), "--model", "m", "--base-url", stub.base_url,
                                      "--api-key-env", KEY_ENV, "--executor", "local"])
    assert result.exit_code == 2 and f"environment variable {KEY_ENV} is not set" in result.output


def test_dry_run_estimates_and_sends_nothing(work: Path, stub: StubServer) -> None:
    report = estimate(work, options(stub, "qa", price_input_per_million=1.0, price_output_per_million=2.0))
    assert report.jobs == 2 and report.estimated_tokens > 2 * 800 and report.estimated_cost > 0
    result = CliRunner().invoke(app, ["annotate", "caption", str(work), "--model", "m", "--base-url", stub.base_url,
                                      "--api-key-env", KEY_ENV, "--dry-run"])
    assert result.exit_code == 0 and "4 requests" in result.output and "nothing was sent" in result.output
    assert stub.state.received["chat"] == 0


def test_batch_api_fills_the_cache_then_validation_runs_as_usual(work: Path, stub: StubServer) -> None:
    result = CliRunner().invoke(app, ["annotate", "caption", str(work), "--model", "stub-vl", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--batch", "--executor", "local"])
    assert result.exit_code == 0, result.output
    assert stub.state.received["batch"] == 1 and stub.state.received["chat"] == 0
    assert "submitted 4 requests" in result.output and "'cached': 4" in result.output
    assert len(events_of(work, "llm:caption")) == 4


def test_ray_actor_pool_gives_the_same_events(work: Path, stub: StubServer, tmp_path: Path) -> None:
    import ray

    local_work = tmp_path / "local"
    shutil.copytree(work, local_work)
    run_llm_annotation(local_work, options(stub), LOCAL)
    try:
        report = run_llm_annotation(work, options(stub), Executor(kind="ray", num_cpus=2))
    finally:
        ray.shutdown()
    assert report.usage.sent == 4  # its own cache: every request went through the actors
    assert events_of(work, "llm:caption") == events_of(local_work, "llm:caption")


def test_jobs_holding_frames_are_bounded_not_only_requests(work: Path, stub: StubServer) -> None:
    from streamo_data.sources.annotators.cache import RequestCache
    from streamo_data.sources.annotators.client import LLMClient
    from streamo_data.sources.annotators.llm import LLMAnnotator
    from streamo_data.sources.annotators.prompts import load_prompt
    from streamo_data.stages.annotate_llm import _video_items, annotate_videos
    from streamo_data.store.workdir import video_root
    from streamo_data.video.backends import available_backends

    class Tracking(LLMAnnotator):
        active = peak = 0

        async def _annotate(self, job, usage):  # type: ignore[no-untyped-def]
            Tracking.active += 1
            Tracking.peak = max(Tracking.peak, Tracking.active)
            try:
                return await super()._annotate(job, usage)
            finally:
                Tracking.active -= 1

    settings = options(stub, concurrency=2).settings
    items, _ = _video_items(work, options(stub))
    for item in items:
        item["events"] = []  # no segments: 2 s windows, 10 jobs a video

    async def run() -> list:
        client = LLMClient(settings, RequestCache(work / "bounded_cache"))
        annotator = Tracking("caption", load_prompt("caption"), settings, client, video_root(work),
                             available_backends())
        try:
            return await annotate_videos(annotator, items, window_s=2.0)
        finally:
            await client.close()

    results = asyncio.run(run())
    assert sum(r["jobs"] for r in results) == 20
    assert Tracking.peak == 4  # 2 x concurrency, however many jobs are queued


def test_identical_requests_in_flight_at_once_are_sent_once(stub: StubServer, tmp_path: Path) -> None:
    """Two videos that open on the same frames ask byte-identical requests at the same moment: the second
    waits for the first reply (counted as cached) instead of reaching the server too."""
    from streamo_data.sources.annotators.cache import RequestCache
    from streamo_data.sources.annotators.client import LLMClient, request_body
    from streamo_data.sources.annotators.replies import response_format

    stub.state.service_time = 0.3
    settings = ClientSettings(model="stub-vl", base_url=stub.base_url, api_key_env=KEY_ENV, concurrency=4)
    messages = [{"role": "user", "content": "Caption the segment from 0 s to 5 s of this 20 s video."}]
    body = request_body("stub-vl", messages, 0.0, 200, response_format("caption_reply"))

    async def run() -> list[str]:
        client = LLMClient(settings, RequestCache(tmp_path / "cache"))
        try:
            replies = await asyncio.gather(*(client.complete(body) for _ in range(3)))
            assert (client.usage.sent, client.usage.cached) == (1, 2)
            return replies
        finally:
            await client.close()

    replies = asyncio.run(run())
    assert len(set(replies)) == 1 and stub.state.received["chat"] == 1
