"""`streamo evaluate --base-url`: an OpenAI-compatible endpoint on loopback scored on a release split by
streaming each sample, with the same state, timing and answer metrics as a fine-tuned run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.release.read import iter_release_samples
from streamo_data.release.write import write_release
from streamo_data.store.workdir import SAMPLES
from tests.conftest import built_work_dir
from tests.llm_stub import StubServer


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_release")
    work = built_work_dir(sample_videos, root / "work", ["temporal_grounding"])
    write_release(work / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def test_an_endpoint_is_scored_on_a_split_by_streaming_each_sample(release: Path, sample_videos: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with StubServer() as stub:
        result = CliRunner().invoke(app, ["evaluate", "stub", str(release), "--split", "train", "--base-url",
                                          stub.base_url, "--api-key-env", "", "--out", str(out), "--video-root",
                                          str(sample_videos), "--max-frames", "8"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        sent = stub.state.received["chat"]
    samples = list(iter_release_samples(release, "train"))
    frames = sum(min(8, s.num_frames) for s in samples)
    assert sent == frames  # one request a frame turn
    report = json.loads((out / "evaluation_train.json").read_text())
    assert sum(sum(row) for row in report["confusion"]) == frames
    assert report["answers"]["responses"] > 0 and "rouge_l" in report["answers"]
    assert "ROUGE-L" in result.output
    with StubServer() as stub:  # not the same port: another endpoint, so asked again; a missing --out refused
        refused = CliRunner().invoke(app, ["evaluate", "stub", str(release), "--base-url", stub.base_url])
        assert refused.exit_code == 2 and "--out" in refused.output
