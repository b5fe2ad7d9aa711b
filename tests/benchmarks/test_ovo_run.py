"""`streamo benchmark ovo-bench run` against a real OpenAI-compatible server on loopback and a tiny random
local Qwen2.5-VL, on generated videos: both protocols write result files the scorer reads, with the answers
the model gave; a run killed with SIGKILL resumes without sending an answered request again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.benchmarks.ovo.score import merge_results, score_results
from streamo_data.cli import app
from streamo_data.sources.annotators.cache import request_key
from tests.benchmarks.ovo_fixtures import annotations, write_benchmark
from tests.llm_stub import StubServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_benchmark(tmp_path_factory.mktemp("ovo"))


def run_args(benchmark: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    path, videos = benchmark
    return ["benchmark", "ovo-bench", "run", "--annotations", str(path), "--video-root", str(videos),
            "--out", str(out), *extra]


def expected_offline_choice_scores() -> dict[str, float]:
    """The stub answers "A" to every multiple-choice question: a task's accuracy is its share of gt 0."""
    by_task: dict[str, list[int]] = {}
    for entry in annotations():
        if "gt" in entry:
            by_task.setdefault(entry["task"], []).append(int(entry["gt"] == 0))
    return {task: 100 * sum(v) / len(v) for task, v in by_task.items()}


def test_offline_protocol_against_an_endpoint_writes_what_the_scorer_reads(benchmark: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "results" / "stub_offline.json"
    with StubServer() as stub:
        result = CliRunner().invoke(app, run_args(benchmark, out, "--model", "stub", "--base-url", stub.base_url,
                                                  "--api-key-env", "", "--max-frames", "5"), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        sent = stub.state.received["chat"]
        bodies, port = stub.state.bodies, stub.port
    tests = sum(len(e.get("test_info", [])) for e in annotations())
    choices = sum(1 for e in annotations() if "gt" in e)
    assert sent == choices + tests  # one request a question, one a forward test
    first = bodies[0]["messages"][0]["content"]
    assert [part["type"] for part in first] == ["image_url"] * (len(first) - 1) + ["text"]
    assert len(first) - 1 <= 5
    data = json.loads(out.read_text())
    assert set(data) == {"backward", "realtime", "forward"}
    assert all(set(e) >= {"id", "video", "task", "response", "ground_truth"} for e in data["backward"])
    scored = score_results(merge_results([out.parent]))
    for task, accuracy in expected_offline_choice_scores().items():
        assert scored.tasks[task] == pytest.approx(accuracy)
    assert scored.tasks["REC"] == pytest.approx(100 / 3)  # "1" to every count: right at the first test only
    assert scored.tasks["SSR"] == pytest.approx(50.0) and scored.tasks["CRR"] == pytest.approx(50.0)  # "Yes"
    # a rerun with the same settings (the same endpoint) asks nothing again; other settings are refused
    with StubServer(port=port) as stub:
        again = CliRunner().invoke(app, run_args(benchmark, out, "--model", "stub", "--base-url", stub.base_url,
                                                 "--api-key-env", "", "--max-frames", "5"))
        assert again.exit_code == 0 and stub.state.received["chat"] == 0, again.output
        other = CliRunner().invoke(app, run_args(benchmark, out, "--model", "stub", "--base-url", stub.base_url,
                                                 "--api-key-env", "", "--max-frames", "6"))
        assert other.exit_code == 2 and "other settings" in other.output


def test_streaming_protocol_asks_a_frame_a_turn_and_maps_states_to_answers(benchmark: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "stub_streaming.json"
    with StubServer() as stub:
        result = CliRunner().invoke(app, run_args(benchmark, out, "--model", "stub", "--base-url", stub.base_url,
                                                  "--api-key-env", "", "--protocol", "streaming"))
        assert result.exit_code == 0, result.output
        bodies = stub.state.bodies
    # every request is the conversation so far: system, then a user turn (time tag, frame) per second
    longest = max(bodies, key=lambda b: len(b["messages"]))["messages"]
    assert longest[0]["role"] == "system" and "</Silence>" in longest[0]["content"]
    users = [m for m in longest if m["role"] == "user"]
    assert users[-1]["content"][0]["text"].startswith(f"<{len(users) - 1}s-{len(users)}s>")
    assert all(m["content"][1]["type"] == "image_url" for m in users)
    scored = score_results(merge_results([out]))
    for task, accuracy in expected_offline_choice_scores().items():  # "</Response> A" after the question's turn
        assert scored.tasks[task] == pytest.approx(accuracy)
    assert scored.tasks["CRR"] == pytest.approx(75.0)  # responded at 3 s: "N" at 2 s, "Y" from 4 s on
    assert scored.tasks["SSR"] == pytest.approx(100.0)  # standby, then response, while each step is under way
    assert scored.tasks["REC"] == pytest.approx(100 / 3)  # "A" is a count of 1


def test_a_local_vlm_runs_both_protocols(benchmark: tuple[Path, Path], tmp_path: Path) -> None:
    from streamo_data.train.vlm.tiny import build_tiny_qwen

    model = build_tiny_qwen(tmp_path / "tiny")
    for protocol in ("offline", "streaming"):
        out = tmp_path / f"tiny_{protocol}.json"
        result = CliRunner().invoke(app, run_args(benchmark, out, "--model", str(model), "--protocol", protocol,
                                                  "--tasks", "EPM,STU,REC,SSR,CRR", "--max-frames", "3",
                                                  "--frame-side", "56"), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        assert len(data["backward"]) == 2 and len(data["realtime"]) == 1 and len(data["forward"]) == 3
        scored = score_results(merge_results([out]))
        assert set(scored.tasks) == {"EPM", "STU", "REC", "SSR", "CRR"} and not scored.malformed
        for entry in data["forward"]:
            assert all("response" in test for test in entry["test_info"])
        if protocol == "streaming":
            assert all(t["response"] in ("Y", "N") for e in data["forward"] if e["task"] != "REC"
                       for t in e["test_info"])


def test_a_run_killed_midway_resumes_without_sending_an_answered_request_again(benchmark: tuple[Path, Path],
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "killed.json"
    journal = tmp_path / "killed.json.work" / "journal.jsonl"
    with StubServer(service_time=0.3) as stub:
        args = [sys.executable, "-m", "streamo_data.cli", *run_args(benchmark, out, "--model", "stub", "--base-url",
                                                                    stub.base_url, "--api-key-env", "",
                                                                    "--concurrency", "2")]
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 4):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not out.exists()  # the result file is written whole, at the end
        cached = {p.stem for p in (tmp_path / "killed.json.work" / "cache").glob("*/*.json")}
        before = len(stub.state.bodies)
        assert 4 <= len(cached) < 22
        result = CliRunner().invoke(app, run_args(benchmark, out, "--model", "stub", "--base-url", stub.base_url,
                                                  "--api-key-env", "", "--concurrency", "2"))
        assert result.exit_code == 0, result.output
        again = [request_key(body, stub.base_url) for body in stub.state.bodies[before:]]
    assert again and not set(again) & cached  # nothing answered before the kill was sent again
    assert len(again) == len(set(again))
    data = json.loads(out.read_text())
    assert sum(len(v) for v in data.values()) == len(annotations())
    assert all(e["response"] is not None for e in data["backward"] + data["realtime"])


def test_bad_input_is_one_line_naming_it(benchmark: tuple[Path, Path], tmp_path: Path) -> None:
    path, videos = benchmark
    not_a_list = tmp_path / "ovo.json"
    not_a_list.write_text('{"backward": []}')
    broken = tmp_path / "broken.json"
    missing = {**annotations()[0], "id": 77, "video": "Ego4D/clips/not_there.mp4"}
    broken.write_text(json.dumps([*annotations(), {"id": 99, "task": "EPM", "video": "x.mp4"}, {"task": "XYZ"},
                                  missing]))
    cases = [
        (run_args((not_a_list, videos), tmp_path / "a.json", "--model", str(tmp_path)), "not OVO-Bench annotations"),
        (run_args(benchmark, tmp_path / "b.json", "--model", str(tmp_path)), "not a model folder"),
        (run_args(benchmark, tmp_path / "c.json", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                  "--tasks", "EPM,NOPE"), "NOPE not OVO-Bench tasks"),
        (run_args(benchmark, tmp_path / "d.json", "--model", "m", "--base-url", "ftp://x"), "--base-url"),
    ]
    for args, reason in cases:
        result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 2 and reason in result.output and "Traceback" not in result.output, result.output
    with StubServer() as stub:  # a broken entry is skipped with its reason, the rest are run
        result = CliRunner().invoke(app, run_args((broken, videos), tmp_path / "e.json", "--model", "stub",
                                                  "--base-url", stub.base_url, "--api-key-env", "",
                                                  "--tasks", "EPM"), env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "skipped 1 entries" in result.output and "without question or options" in result.output
    assert "not one of OVO-Bench's twelve" in result.output
    assert "failed 1 questions" in result.output and "not_there.mp4" in result.output  # the run went on
    written = json.loads((tmp_path / "e.json").read_text())["backward"]
    assert [e["response"] is None for e in written] == [False, False, True]  # as OVO-Bench writes a failure
