"""The OVO-Bench scorer on hand-made result files with known answers, every task type, OVO-Bench's quirks
included; and, when OVO-Bench's own checkout is at hand, the same numbers as its score.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamo_data.benchmarks.ovo.score import merge_results, score_results
from streamo_data.cli import app


def mc(entry_id: int, task: str, response: Any, truth: str) -> dict[str, Any]:
    return {"id": entry_id, "video": "v.mp4", "task": task, "question": "q", "response": response,
            "ground_truth": truth}


def results() -> dict[str, list[dict[str, Any]]]:
    backward = [mc(0, "EPM", "A", "A"), mc(1, "EPM", "Answer: B", "B"), mc(2, "EPM", "C", "D"),
                mc(3, "EPM", None, "A"),  # EPM 2/4
                mc(4, "ASI", "B. A person", "A"),  # their substring rule: "A" is in it
                mc(5, "HLD", "d", "D")]  # case matters: 0
    realtime = [mc(10, "STU", "A", "A"), mc(11, "OJR", "B", "C"), mc(12, "ATR", "C", "C"), mc(13, "ATR", "A", "C"),
                mc(14, "ACR", "D.", "D"), mc(15, "OCR", "", "A"), mc(16, "FPD", "B", "B")]
    forward = [
        {"id": 20, "task": "REC", "video": "v.mp4", "test_info": [
            {"realtime": 3, "count": 1, "response": "1"}, {"realtime": 5, "count": 2, "response": "2 times"},
            {"realtime": 9, "count": 2, "response": "1 or 2"}, {"realtime": 9, "count": 3, "response": None}]},
        {"id": 21, "task": "SSR", "video": "v.mp4", "test_info": [
            {"realtime": 2, "type": 0, "response": "N"}, {"realtime": 3, "type": 1, "response": "Y"},
            {"realtime": 4, "type": 0, "response": "No."}, {"realtime": 5, "type": 1, "response": "no"}]},
        {"id": 22, "task": "CRR", "video": "v.mp4", "test_info": [
            {"realtime": 2, "type": 0, "response": "Yes"}, {"realtime": 8, "type": 1, "response": "Yes"}]}]
    return {"backward": backward, "realtime": realtime, "forward": forward}


EXPECTED_TASKS = {"EPM": 50.0, "ASI": 100.0, "HLD": 0.0, "STU": 100.0, "OJR": 0.0, "ATR": 50.0, "ACR": 100.0,
                  "OCR": 0.0, "FPD": 100.0, "REC": 50.0, "SSR": 75.0, "CRR": 50.0}


def test_every_task_is_scored_as_ovo_bench_scores_it() -> None:
    scored = score_results(results())
    assert scored.tasks == pytest.approx(EXPECTED_TASKS)
    assert scored.categories == pytest.approx({"backward": 50.0, "realtime": 350 / 6, "forward": 175 / 3})
    assert scored.overall == pytest.approx((50.0 + 350 / 6 + 175 / 3) / 3)  # the mean of categories
    assert scored.counts["EPM"] == 4 and scored.counts["REC"] == 4 and not scored.malformed


def test_malformed_entries_are_named_and_counted_not_fatal() -> None:
    broken = results()
    broken["backward"].append({"id": 99, "task": "EPM", "video": "v.mp4"})  # no response
    broken["forward"].append({"id": 98, "task": "EPM", "test_info": []})
    broken["realtime"].append("not an entry")
    scored = score_results(broken)
    assert scored.tasks == pytest.approx(EXPECTED_TASKS)
    assert sum(scored.malformed.values()) == 3
    assert any("id 99" in example for example in scored.examples.values())


def test_the_score_command_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    folder = tmp_path / "GPT"
    folder.mkdir()
    data = results()
    (folder / "GPT_backward_offline.json").write_text(json.dumps({**data, "realtime": [], "forward": []}))
    (folder / "GPT_rest_offline.json").write_text(json.dumps({**data, "backward": []}))
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["benchmark", "ovo-bench", "score", str(folder), "--json", str(out)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Backward Tracing" in result.output and "Overall" in result.output
    scores = json.loads(out.read_text())
    assert set(scores) == {"tasks", "categories", "overall"}
    assert scores["tasks"] == pytest.approx(EXPECTED_TASKS)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    refused = CliRunner().invoke(app, ["benchmark", "ovo-bench", "score", str(bad)])
    assert refused.exit_code == 2 and "not an OVO-Bench result file" in refused.output


def test_the_same_numbers_as_ovo_bench_own_score_py(tmp_path: Path) -> None:
    checkout = os.environ.get("STREAMO_OVO_BENCH_CHECKOUT")
    if not checkout or not (Path(checkout) / "score.py").exists():
        pytest.skip("set STREAMO_OVO_BENCH_CHECKOUT to a checkout of github.com/JoeLeelyf/OVO-Bench to compare")
    work = tmp_path / "ovo"
    shutil.copytree(checkout, work, ignore=shutil.ignore_patterns("results", ".git"))
    (work / "results" / "GPT").mkdir(parents=True)
    (work / "results" / "GPT" / "GPT_all_offline.json").write_text(json.dumps(results()))
    printed = subprocess.run([sys.executable, "score.py", "--model", "GPT", "--mode", "offline"], cwd=work,
                             capture_output=True, text=True, check=True).stdout
    theirs = {task: float(value) for task, value in re.findall(r"Task: (\w+), Acc: ([\d.]+)", printed)}
    scored = score_results(results())
    assert theirs == {task: round(value, 2) for task, value in scored.tasks.items()}
    total = float(re.search(r"Total Avg\.: ([\d.]+)", printed).group(1))  # type: ignore[union-attr]
    assert total == round(scored.overall or 0, 2)
    assert merge_results([work / "results" / "GPT"])["forward"] == results()["forward"]
