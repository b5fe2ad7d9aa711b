"""Bad input to `streamo train` and `evaluate`: one line naming the item and the reason, exit code 2, no traceback, and
nothing written over earlier work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.bad_inputs.parts import assert_one_line, invoke


def test_evaluate_on_a_folder_that_is_not_a_run(release: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("evaluate", tmp_path, release), str(tmp_path), "config.yaml")


def test_evaluate_on_a_folder_that_is_not_a_release(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 1\n", encoding="utf-8")
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    assert_one_line(invoke("evaluate", run, tmp_path), "manifest.json")


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--epochs", "-3"], ["--batch-size", "0"], ["--lr", "0"],
                                    ["--lr", "nan"], ["--gamma", "-1"], ["--loss", "mse"], ["--alpha", "lots"]])
def test_train_refuses_nonsense_options_before_starting(release: Path, sample_videos: Path, tmp_path: Path,
                                                        option: list[str]) -> None:
    out = tmp_path / "run"
    assert_one_line(invoke("train", release, "--out", out, "--video-root", sample_videos, *option),
                    option[0].removeprefix("--").replace("-", "_"))
    assert not out.exists()


def test_train_config_file_with_nonsense(release: Path, sample_videos: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    for text, words in (("[1, 2]\n", ("train.yaml", "mapping")), ("epochs: [\n", ("train.yaml",)),
                        ("heads: 3\nd_model: 32\n", ("d_model", "heads")), ("epochs: ten\n", ("epochs",))):
        config.write_text(text, encoding="utf-8")
        assert_one_line(invoke("train", release, "--out", tmp_path / "run", "--video-root", sample_videos,
                               "--config", config), *words)
    assert not (tmp_path / "run").exists()


def test_train_on_a_folder_that_is_not_a_release(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("train", tmp_path, "--out", tmp_path / "run", "--video-root", sample_videos),
                    "manifest.json")

