"""The LLM annotators against bad options, bad endpoints, bad replies and bad cache files: each is one line
(a bad run) or one reject (a bad job), never a traceback or an aborted run; and the RPM limit holds across
retries and Ray actors, counted by what the loopback server (tests/llm_stub.py) receives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.runtime.runner import Executor
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.stages.annotate_llm import AnnotateOptions, AnnotateReport, run_llm_annotation
from streamo_data.store.tables import iter_rows
from tests.conftest import annotated_work_dir
from tests.llm_stub import StubServer

KEY_ENV = "STREAMO_TEST_LLM_KEY"
KEY = "sk-test-robust-0123456789"
LOCAL = Executor(kind="local")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return annotated_work_dir(tmp_path_factory.mktemp("llm_robust"), seed=60)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def options(base_url: str, kind: str = "caption", window_s: float = 10.0, actors: int = 2,
            **settings: object) -> AnnotateOptions:
    defaults = {"model": "stub-vl", "timeout_s": 5.0, "backoff_base_s": 0.02, "backoff_max_s": 0.05,
                "concurrency": 4}
    return AnnotateOptions(kind=kind, window_s=window_s, actors=actors, settings=ClientSettings(
        base_url=base_url, api_key_env=KEY_ENV, **{**defaults, **settings}))


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: a hang is a failure after ``timeout``, not a stuck suite."""
    return subprocess.run([sys.executable, "-m", "streamo_data.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, KEY_ENV: KEY}, cwd=REPO)


def one_line_error(result: subprocess.CompletedProcess[str] | object, *needles: str) -> None:
    output = (result.stdout + result.stderr) if isinstance(result, subprocess.CompletedProcess) \
        else result.output  # type: ignore[attr-defined]
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output and len(lines) == 1, output
    for needle in needles:
        assert needle in lines[0], output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- 1. options are checked before anything runs -----------------------------------------------------------
@pytest.mark.parametrize(("flags", "named"), [
    (["--concurrency", "0"], "--concurrency"),
    (["--concurrency", "-3", "--executor", "ray"], "--concurrency"),
    (["--model", ""], "--model"),
    (["--model", "   "], "--model"),
    (["--rpm", "0"], "--rpm"),
    (["--tpm", "-5"], "--tpm"),
    (["--timeout", "0"], "--timeout"),
    (["--max-attempts", "0"], "--max-attempts"),
    (["--actors", "0"], "--actors"),
    (["--window", "0"], "--window"),
    (["--price-in", "-1"], "--price-in"),
    (["--base-url", "localhost:8000/v1"], "--base-url"),
])
def test_bad_options_are_one_line_and_exit_2(work: Path, stub: StubServer, flags: list[str], named: str) -> None:
    base = ["--model", "stub-vl", "--base-url", stub.base_url, "--api-key-env", KEY_ENV, "--executor", "local"]
    result = cli("annotate", "caption", str(work), *base, *flags, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    one_line_error(result, named)
    assert stub.state.received["chat"] == 0


# ---- 2. a missing key is one line on the Ray path too --------------------------------------------------------
def test_a_missing_key_is_one_line_on_ray(work: Path, stub: StubServer) -> None:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    result = subprocess.run([sys.executable, "-m", "streamo_data.cli", "annotate", "caption", str(work), "--model",
                             "m", "--base-url", stub.base_url, "--api-key-env", KEY_ENV, "--executor", "ray",
                             "--num-cpus", "1"], capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert result.returncode == 2
    one_line_error(result, f"environment variable {KEY_ENV} is not set")


# ---- 3. nothing listening: the run says so and fails -------------------------------------------------------
def test_a_closed_port_fails_the_run_and_keeps_its_reports(work: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = cli("annotate", "caption", str(work), "--model", "stub-vl", "--base-url", url, "--api-key-env", KEY_ENV,
                 "--executor", "local", "--max-attempts", "1")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "every request failed" in result.stderr and "Traceback" not in result.stderr
    rejects = (work / "annotate_caption_rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 4 and "connection error" in json.loads(rejects[0])["reason"]


def test_a_partly_failed_run_keeps_what_succeeded_and_exits_0(work: Path, stub: StubServer) -> None:
    stub.inject("401")  # one job's request is refused for good; the other three are answered
    result = cli("annotate", "caption", str(work), "--model", "stub-vl", "--base-url", stub.base_url,
                 "--api-key-env", KEY_ENV, "--executor", "local", "--concurrency", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len([r for r in iter_rows(work / "events.parquet") if r["source"] == "llm:caption"]) == 3


# ---- 4. one bad reply or cache file is one job's problem -------------------------------------------------------
def test_a_qa_span_just_past_the_end_is_clipped_not_fatal(work: Path, stub: StubServer) -> None:
    stub.inject("at_end", count=2)  # both videos' replies (valid within the tolerance)
    report = run_llm_annotation(work, options(stub.base_url, "qa", concurrency=1), LOCAL)
    assert not report.rejects and report.events == 6
    qa = [r for r in iter_rows(work / "events.parquet") if r["source"].startswith("llm:qa")]
    assert all(r["start_s"] <= r["end_s"] <= r["duration_s"] for r in qa)
    assert sum(r["start_s"] == r["end_s"] == r["duration_s"] for r in qa) == 2


@pytest.mark.parametrize("fault", ["not_json", "no_choices"])
def test_a_200_reply_that_is_not_a_completion_is_retried_then_rejected(
    work: Path, stub: StubServer, fault: str
) -> None:
    stub.inject(fault)  # once: the retry is answered
    report = run_llm_annotation(work, options(stub.base_url, concurrency=1), LOCAL)
    assert report.events == 4 and report.usage.retries == 1 and not report.rejects

    stub.inject(fault, count=100)  # always: each job fails alone with the reason, the run completes
    report = run_llm_annotation(work, options(stub.base_url, concurrency=1, max_attempts=2, model="other"), LOCAL)
    (reason,) = report.rejects
    assert report.rejects[reason] == 4 and "not a chat completion" in reason
    stub.state.faults.clear()


@pytest.mark.parametrize("header", ["soon", "", "inf", "nan", "-3"])
def test_a_retry_after_that_is_not_a_time_falls_back_to_backoff(work: Path, stub: StubServer, header: str) -> None:
    stub.inject("429", retry_after=header)
    outcome: list[AnnotateReport] = []  # in a daemon thread, so that a wait of 'inf' fails the test, not the suite
    runner = threading.Thread(target=lambda: outcome.append(run_llm_annotation(
        work, options(stub.base_url, concurrency=1), LOCAL)), daemon=True)
    runner.start()
    runner.join(120)
    assert outcome, "the run is still waiting on the Retry-After"
    (report,) = outcome
    assert report.usage.retry_reasons == {"HTTP 429": 1} and report.events == 4 and not report.rejects


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"content": 3}', b"\xff\xfe"])
def test_a_corrupt_cache_entry_is_a_miss_and_is_rewritten(work: Path, stub: StubServer, damage: bytes) -> None:
    run_llm_annotation(work, options(stub.base_url), LOCAL)
    entries = sorted((work / "llm_cache").glob("*/*.json"))
    assert len(entries) == 4
    entries[0].write_bytes(damage)
    before = stub.state.received["chat"]
    report = run_llm_annotation(work, options(stub.base_url), LOCAL)
    assert stub.state.received["chat"] - before == 1 and report.usage.cached == 3 and not report.rejects
    assert isinstance(json.loads(entries[0].read_text())["content"], str)


# ---- 5. the RPM limit holds across retries and actors ---------------------------------------------------------
def assert_within_rpm(arrivals: list[float], rpm: float, burst: int) -> None:
    """Every stretch of requests fits ``burst`` plus the rate times its length, with a quarter second of slack:
    times are taken where requests arrive, and on a loaded machine requests sent apart can arrive together."""
    rate = rpm / 60.0
    arrivals = sorted(arrivals)
    for i, first in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= burst + rate * (arrivals[j] - first + 0.25) + 1e-9, (
                f"{j - i + 1} requests in {arrivals[j] - first:.3f}s at rpm {rpm}")


def test_retries_draw_from_the_rpm_budget(work: Path, stub: StubServer) -> None:
    stub.inject("500", count=4)  # five attempts for the first job, all within the same limit
    report = run_llm_annotation(work, options(stub.base_url, concurrency=4, requests_per_minute=240), LOCAL)
    assert report.events == 4 and report.usage.retries == 4
    assert len(stub.state.arrivals) == 8
    assert_within_rpm(stub.state.arrivals, 240, burst=4)  # a second's worth


def test_the_rpm_limit_holds_across_ray_actors_and_batches(work: Path, stub: StubServer) -> None:
    import ray

    # 2 s windows: 10 caption jobs a video, 20 requests, at 240 a minute shared by two actors
    opts = options(stub.base_url, window_s=2.0, actors=2, concurrency=8, requests_per_minute=240)
    for path in work.glob("events.parquet"):
        path.unlink()  # no segments: fixed windows
    try:
        report = run_llm_annotation(work, opts, Executor(kind="ray", num_cpus=2))
    finally:
        ray.shutdown()
    # (windows whose frames are alike in both videos are the same request: answered once, then cached)
    assert report.usage.sent + report.usage.cached == 20 and report.events == 20
    assert len(stub.state.arrivals) == report.usage.sent >= 12
    assert_within_rpm(stub.state.arrivals, 240, burst=4)  # a second's worth per actor


# ---- 6. the endpoint is part of the cache key -----------------------------------------------------------------
def test_the_same_model_on_another_endpoint_is_not_a_cache_hit(work: Path, stub: StubServer) -> None:
    run_llm_annotation(work, options(stub.base_url), LOCAL)
    with StubServer() as other:
        report = run_llm_annotation(work, options(other.base_url), LOCAL)
        assert other.state.received["chat"] == 4 and report.usage.cached == 0
    again = run_llm_annotation(work, options(stub.base_url + "/"), LOCAL)  # the same endpoint, spelled otherwise
    assert again.usage.cached == 4


# ---- 7. prompt templates: shipped in the wheel, and a bad folder is one line ---------------------------------
def test_the_wheel_carries_the_prompt_templates(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("streamo_data-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = ("import streamo_data, sys\n"
              "from streamo_data.sources.annotators.prompts import load_prompt\n"
              "assert streamo_data.__file__.startswith(sys.argv[1]), streamo_data.__file__\n"
              "print(sorted(load_prompt(k).output for k in ('caption', 'narration', 'qa')))\n")
    env = {k: v for k, v in os.environ.items() if k != "STREAMO_PROMPTS"}
    loaded = subprocess.run([sys.executable, "-c", script, str(tmp_path / "site")], capture_output=True, text=True,
                            cwd=elsewhere, env={**env, "PYTHONPATH": str(tmp_path / "site")}, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "['caption_reply', 'narration_reply', 'qa_reply']"



@pytest.mark.parametrize(("text", "reason"), [
    ("no front matter\n## system\nx\n## user\ny\n", "front matter"),
    ("---\nname: caption\n", "front matter"),
    ("---\nname: [unclosed\n---\n## system\nx\n## user\ny\n", "YAML"),
    ("---\n- a list\n---\n## system\nx\n## user\ny\n", "front matter"),
    ("---\nname: caption\n---\n## system\nx\n## user\ny\n", "output"),
    ("---\nname: caption\noutput: poem_reply\n---\n## system\nx\n## user\ny\n", "poem_reply"),
    ("---\nname: caption\noutput: caption_reply\nframes: many\n---\n## system\nx\n## user\ny\n", "frames"),
    ("---\nname: caption\noutput: caption_reply\nframes: 0\n---\n## system\nx\n## user\ny\n", "frames"),
    ("---\nname: caption\noutput: caption_reply\n---\n## system\nx\n## user\nfrom {begin}s\n", "begin"),
    ("---\nname: caption\noutput: caption_reply\n---\n## system\nx\n## user\nreply {\"a\": 1}\n", "{{"),
    ("---\nname: caption\noutput: caption_reply\n---\n## system\nx\n", "## user"),
    (b"---\nname: caption\n\xff\n---\n", "UTF-8"),
])
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_malformed_prompt_template_is_one_line_naming_the_file(
    work: Path, stub: StubServer, tmp_path: Path, text: str | bytes, reason: str, executor: str
) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    path = folder / "caption.md"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = CliRunner().invoke(app, ["annotate", "caption", str(work), "--model", "stub-vl", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--prompts", str(folder),
                                      "--executor", executor, "--num-cpus", "1"])
    assert result.exit_code == 2, result.output
    one_line_error(result, str(path), reason)
    assert stub.state.received["chat"] == 0


def test_a_missing_prompt_folder_is_one_line(work: Path, stub: StubServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["annotate", "narration", str(work), "--model", "stub-vl", "--base-url",
                                      stub.base_url, "--api-key-env", KEY_ENV, "--prompts", str(tmp_path / "nope"),
                                      "--executor", "ray", "--num-cpus", "1"])
    assert result.exit_code == 2, result.output
    one_line_error(result, str(tmp_path / "nope" / "narration.md"))
