"""Narration windows answered several to a request (``--narration-windows-per-request``) against the real
loopback server: the same narration as the paper's one window a request, from fewer requests that send
each frame about once; a reply that leaves a window out is refused; every stage's prompt keeps its fixed
part first (the prefix a server with prefix caching reuses); images are sized as asked; and the dry run
counts both methods side by side."""

from __future__ import annotations

import json
import math
import os
import shutil
import string
from pathlib import Path

import pytest
from pydantic import ValidationError

from streamo_data.runtime.runner import Executor
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.sources.annotators.frames import ImageSizing, image_tokens
from streamo_data.sources.annotators.prompts import load_prompt, prompts_dir
from streamo_data.sources.annotators.replies import WindowChangesReply
from streamo_data.sources.annotators.staged import narration_windows
from streamo_data.stages.annotate_llm import AnnotateOptions, estimate, pending_requests, run_llm_annotation
from streamo_data.store.tables import iter_rows
from tests.conftest import annotated_work_dir
from tests.llm_stub import StubServer

KEY_ENV = "STREAMO_TEST_LLM_KEY"
LOCAL = Executor(kind="local")
WINDOWS = narration_windows(20.0, 2.0, 1.0)  # the two 20 s videos of the work dir


@pytest.fixture(scope="module")
def base_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return annotated_work_dir(tmp_path_factory.mktemp("batching"), seed=40)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-batching-0000")


def options(stub: StubServer, **extra: object) -> AnnotateOptions:
    settings = ClientSettings(model="stub-vl", base_url=stub.base_url, api_key_env=KEY_ENV, timeout_s=5.0,
                              backoff_base_s=0.05, backoff_max_s=0.2, concurrency=4)
    return AnnotateOptions(kind="narration_pipeline", settings=settings, **extra)


def narration(work: Path) -> list[tuple[str, float, str]]:
    return sorted((r["video_id"], r["start_s"], r["text"]) for r in iter_rows(work / "events.parquet")
                  if r["source"] == "llm:narration_pipeline")


def frame_times(body: dict) -> list[float]:
    """The times of the frames a request sends (each image follows its ``t=<time>s`` part)."""
    parts = body["messages"][1]["content"]
    return [float(p["text"][2:-1]) for p, q in zip(parts, parts[1:], strict=False)
            if p["type"] == "text" and q["type"] == "image_url"]


def test_windows_a_request_give_the_paper_narration_from_fewer_requests_and_frames(
        work: Path, stub: StubServer, tmp_path: Path) -> None:
    paper = tmp_path / "paper"
    shutil.copytree(work, paper)
    paper_report = run_llm_annotation(paper, options(stub), LOCAL)
    report = run_llm_annotation(work, options(stub, narration_windows_per_request=5), LOCAL)
    assert not report.rejects and narration(work) == narration(paper) and len(narration(work)) == 8
    # 19 windows a video: 4 requests of up to 5 windows instead of 19 of one (and one rewrite each)
    asked = report.usage.sent + report.usage.cached
    assert paper_report.usage.sent + paper_report.usage.cached == 2 * len(WINDOWS) + 2
    assert asked == 2 * math.ceil(len(WINDOWS) / 5) + 2
    # the first-stage requests with their frames, as the Batch API pass builds them (nothing cached)
    one_each = [b for _, b in pending_requests(work, options(stub, cache_dir=tmp_path / "c1"))]
    batched = [b for _, b in pending_requests(work, options(stub, narration_windows_per_request=5,
                                                            cache_dir=tmp_path / "c5"))]
    assert len(one_each) == 2 * len(WINDOWS) and len(batched) == 2 * 4
    # N windows 2 s long stepping 1 s share frames: N + 1 frames a request, not 2N
    assert sum(len(frame_times(b)) for b in one_each) == 2 * 2 * len(WINDOWS)
    assert [len(frame_times(b)) for b in batched[:4]] == [6, 6, 6, 5]
    assert sorted({t for b in batched for t in frame_times(b)}) == sorted({t for b in one_each for t in frame_times(b)})
    assert all(len(set(frame_times(b))) == len(frame_times(b)) for b in batched)  # no frame twice in a request
    params = json.loads(next(r for r in iter_rows(work / "events.parquet")
                             if r["source"] == "llm:narration_pipeline")["provenance"])["params"]
    assert params["windows_per_request"] == "5" and params["narration_windows.frames"] == "2"
    assert "narration_window.model" not in params and params["narration_rewrite.model"] == "stub-vl"


def test_a_reply_that_leaves_a_window_out_is_shown_its_error_and_asked_again(work: Path, stub: StubServer) -> None:
    stub.inject("drop_window", schema="narration_windows_reply")
    report = run_llm_annotation(work, options(stub, narration_windows_per_request=5), LOCAL)
    assert not report.rejects and len(narration(work)) == 8
    assert report.usage.sent + report.usage.cached == 2 * 4 + 2 + 1  # the one window request asked again
    retried = [b for b in stub.state.bodies if len(b["messages"]) > 2]  # the reply and its error appended
    assert len(retried) == 1, [m["content"] for m in retried[-1]["messages"][2:]] if retried else None
    assert "windows were asked about" in str(retried[0]["messages"][2:])
    with pytest.raises(ValidationError, match="not the window asked about"):
        WindowChangesReply.model_validate({"windows": [{"start_s": 1, "end_s": 3, "change": "x"}]},
                                          context={"windows": [[0.0, 2.0]]})


def test_every_stage_prompt_puts_its_fixed_instructions_before_what_varies() -> None:
    for path in sorted(p for p in prompts_dir().glob("*.md") if p.name != "README.md"):
        prompt = load_prompt(path.stem)
        assert not any(name for _, name, _, _ in string.Formatter().parse(prompt.system)), path.name
        first = ""  # the user text before its first placeholder
        for literal, name, _, _ in string.Formatter().parse(prompt.user):
            first += literal
            if name:
                break
        # the first placeholder comes after the reply instructions: what varies goes last, frames after it
        assert "Reply as JSON" in first, (path.name, first)


def test_requests_of_one_stage_share_everything_up_to_their_first_varying_value(work: Path, stub: StubServer) -> None:
    run_llm_annotation(work, options(stub, narration_windows_per_request=3), LOCAL)
    for schema in ("narration_windows_reply", "narration_rewrite_reply"):
        bodies = [b for b in stub.state.bodies if b["response_format"]["json_schema"]["name"] == schema]
        texts = [b["messages"][1]["content"] if isinstance(b["messages"][1]["content"], str)
                 else b["messages"][1]["content"][0]["text"] for b in bodies]
        assert len({json.dumps(b["messages"][0]) for b in bodies}) == 1  # one system message
        shared = os.path.commonprefix(texts)
        assert "Reply as JSON" in shared and texts[0].index("Reply as JSON") < len(shared), schema
    assert len(set(texts)) == 1  # the two videos' rewrites: one request, the second a cache hit
    assert len({b["messages"][1]["content"][0]["text"] for b in stub.state.bodies
                if b["response_format"]["json_schema"]["name"] == "narration_windows_reply"}) > 1


def test_images_go_out_at_the_asked_size_and_detail(work: Path, stub: StubServer) -> None:
    import base64

    import cv2
    import numpy as np

    run_llm_annotation(work, options(stub, narration_windows_per_request=5, image_max_side=32,
                                     image_detail="high"), LOCAL)
    image = next(p["image_url"] for b in stub.state.bodies for p in b["messages"][1]["content"]
                 if p["type"] == "image_url")
    assert image["detail"] == "high"
    pixels = cv2.imdecode(np.frombuffer(base64.b64decode(image["url"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert max(pixels.shape[:2]) == 32
    assert image_tokens(512, 288, "low") == 85 and image_tokens(512, 288, "high") == 85 + 170
    assert image_tokens(1920, 1080, "high") == 85 + 170 * 2 * 3  # fitted to 1365x768: 3 x 2 tiles
    assert ImageSizing(max_side=512).sent_size(1920, 1080) == (512, 288)
    with pytest.raises(ValueError, match="detail"):
        ImageSizing(detail="ultra")


def test_dry_run_counts_requests_image_and_text_tokens_beside_the_paper_windowing(
        work: Path, stub: StubServer) -> None:
    from typer.testing import CliRunner

    from streamo_data.cli import app

    report = estimate(work, options(stub, narration_windows_per_request=5))
    ours, paper = report.stages["narration_windows"], report.paper_stages["narration_window"]
    assert ours["requests"] == 2 * 4 and paper["requests"] == 2 * len(WINDOWS)
    assert ours["images"] == 2 * 23 and paper["images"] == 2 * 2 * len(WINDOWS)
    assert ours["image_tokens"] == 85 * ours["images"] and ours["text_tokens"] < paper["text_tokens"]
    assert report.paper_stages["narration_rewrite"]["requests"] == report.stages["narration_rewrite"]["requests"] == 2
    result = CliRunner().invoke(app, ["annotate", "narration-pipeline", str(work), "--model", "m", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--dry-run",
                                      "--narration-windows-per-request", "5"])
    assert result.exit_code == 0, result.output
    assert "stage narration_windows: 8 requests" in result.output
    assert f"paper's one window a request: stage narration_window: {2 * len(WINDOWS)} requests" in result.output
    assert "per 1,000 videos 4,000 requests" in result.output and stub.state.received["chat"] == 0
    bad = CliRunner().invoke(app, ["annotate", "narration-pipeline", str(work), "--model", "m", "--base-url",
                                   stub.base_url, "--api-key-env", KEY_ENV, "--narration-windows-per-request", "0"])
    assert bad.exit_code == 2 and "--narration-windows-per-request" in bad.output
