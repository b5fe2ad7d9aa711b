"""Fidelity to the paper's corpus: its figures as data, and a release's figures beside them in `streamo stats`
and in the dataset card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.corpus.fidelity import (
    PAPER_FOLDER_SHARES,
    PAPER_LENGTH_COUNTS,
    PAPER_TASK_SHARES,
    PAPER_VIDEOS,
    fidelity,
    length_bin,
    ratio_text,
)
from streamo_data.release.stats import release_stats
from streamo_data.release.write import write_release
from streamo_data.store.tables import write_rows


def test_the_papers_figures_add_up() -> None:
    assert sum(PAPER_LENGTH_COUNTS.values()) == PAPER_VIDEOS
    assert sum(PAPER_TASK_SHARES.values()) == pytest.approx(1.001)  # the paper's own rounding
    assert PAPER_FOLDER_SHARES["qa"] == pytest.approx(0.348 + 0.138)


@pytest.mark.parametrize(("seconds", "label"), [(0.0, "0-30s"), (29.99, "0-30s"), (30.0, "30-60s"),
                                                (119.0, "60-120s"), (120.0, "120-240s"), (240.0, ">240s")])
def test_length_bins_are_closed_below(seconds: float, label: str) -> None:
    assert length_bin(seconds) == label


def test_state_ratio_is_scaled_to_the_papers_total() -> None:
    assert ratio_text({"silence": 12, "standby": 3, "response": 2}) == "12.0:3.0:2.0"
    assert ratio_text({"silence": 0.779, "standby": 0.209, "response": 0.012}) == "13.2:3.6:0.2"
    assert ratio_text({"silence": 5, "standby": 0, "response": 0}) == "17.0:0.0:0.0"
    assert ratio_text({}) == "n/a"


def test_differences_are_ours_minus_the_papers_in_points() -> None:
    report = fidelity({"narration": 1, "temporal_grounding": 3}, {"silence": 6, "standby": 3, "response": 1},
                      {"0-30s": 2, ">240s": 2}, responses=6, samples=4)
    assert report["shares"]["narration"] == {"count": 1, "share": 0.25, "paper": 0.127, "diff_pp": 12.3}
    assert report["shares"]["offline_qa"] == {"count": 0, "share": 0.0, "paper": 0.138, "diff_pp": -13.8}
    assert report["state_share"]["response"]["diff_pp"] == pytest.approx(100 * (0.1 - 2 / 17), abs=0.01)
    assert report["state_ratio"] == {"ours": "10.2:5.1:1.7", "paper": "12:3:2"}
    assert report["video_length"][">240s"] == {"count": 2, "share": 0.5, "paper": round(6086 / 135875, 4),
                                               "diff_pp": round(100 * (0.5 - 6086 / 135875), 2),
                                               "paper_count": 6086}
    assert report["responses_per_sample"] == {"ours": 1.5, "paper": None, "diff": None}


def _sample(task: str, video: str, duration: int, responses: list[ResponseTurn]) -> dict:
    return StreamingSample.create(
        task=task, source="test", video_id=video, video_path=f"{video}.mp4", video_name=video,
        duration_s=float(duration), fps=1.0, num_frames=duration,
        questions=[QuestionTurn(content="What happens?", time=0.0)], responses=responses,
    ).model_dump(mode="json")


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five samples over three videos of 25 s, 100 s and 300 s; v1 is in two tasks (one video, counted once)."""
    root = tmp_path_factory.mktemp("fidelity")
    rows = [
        _sample("narration", "v1", 25, [ResponseTurn(content="a man walks", time=3.0),
                                         ResponseTurn(content="he sits", time=8.0)]),
        _sample("narration", "v1", 25, [ResponseTurn(content="he stands", time=10.0)]),
        _sample("temporal_grounding", "v1", 25, [ResponseTurn(content="4-9", st_time=4.0, end_time=9.0)]),
        _sample("temporal_grounding", "v2", 100, [ResponseTurn(content="10-20", st_time=10.0, end_time=20.0)]),
        _sample("time_sensitive_qa", "v3", 300, [ResponseTurn(content="red", time=5.0),
                                                 ResponseTurn(content="blue", time=50.0)]),
    ]
    write_rows(root / "samples.parquet", StreamingSample, rows)
    write_release(root / "samples.parquet", root / "release", validation_fraction=0.0)
    return root / "release"


def test_stats_put_the_release_beside_the_paper(release: Path) -> None:
    stats = release_stats(release)
    report = stats["fidelity"]
    assert stats["videos"] == 3
    assert stats["video_length"] == {"0-30s": 1, "30-60s": 0, "60-120s": 1, "120-240s": 0, ">240s": 1}
    assert {task: row["count"] for task, row in report["shares"].items()} == {
        "time_sensitive_qa": 1, "temporal_grounding": 2, "offline_qa": 0, "narration": 2, "dense_captioning": 0,
        "action_captioning": 0}
    assert report["shares"]["narration"]["diff_pp"] == pytest.approx(40.0 - 12.7)
    # frames 25 + 25 + 25 + 100 + 300 = 475; responses 7 (one frame each); standby 6 + 11 (spans 4-9, 10-20)
    assert {state: row["count"] for state, row in report["state_share"].items()} == {
        "silence": 475 - 7 - 17, "standby": 17, "response": 7}
    assert report["responses_per_sample"]["ours"] == 1.4

    result = CliRunner().invoke(app, ["stats", str(release), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fidelity"] == json.loads(json.dumps(report))
    table = CliRunner().invoke(app, ["stats", str(release)])
    assert table.exit_code == 0, table.output
    assert "beside the paper's" in table.output and "12:3:2" in table.output


def test_the_card_states_the_fidelity_and_datasets_still_reads_it(release: Path, tmp_path: Path) -> None:
    from datasets import load_dataset

    card = (release / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---\n")[1])
    assert [config["config_name"] for config in header["configs"]] == [
        "all", "narration", "temporal_grounding", "time_sensitive_qa"]
    assert "## Fidelity to the paper's corpus" in card
    assert "| task share | narration | 40.0% (2) | 12.7% | +27.3 pp |" in card
    assert "| video length | >240s | 33.3% (1) | 4.5% (6086) | +28.9 pp |" in card
    assert "over 3 videos" in card
    everything = load_dataset(str(release), cache_dir=str(tmp_path / "cache"))
    assert sum(split.num_rows for split in everything.values()) == 5
