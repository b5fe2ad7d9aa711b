"""Official splits: every recipe reads its source's training data by default and counts what it leaves out.

Files are written in each source's published layout with its published names; a held-out subset must never
reach events.parquet unless asked for, whether the subset is in the record (COIN, YouCook2, HACS), in the
file's name (ActivityNet, Charades-STA, QVHighlights, DiDeMo, TACoS) or in split lists (QuerYD).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.sources.recipes import RECIPES, run_recipe


def database(subsets: dict[str, str], items: str, text: str) -> dict[str, object]:
    return {"database": {video: {"subset": subset, "duration": 30.0,
                                 items: [{"segment": [1.0, 4.0], text: f"step of {video}"}]}
                         for video, subset in subsets.items()}}



def event_texts(work: Path) -> set[str]:
    return set(pq.read_table(work / "events.parquet").column("text").to_pylist())


@pytest.mark.parametrize(("recipe", "file", "items", "text", "held_out"), [
    ("coin", "COIN.json", "annotation", "label", "testing"),
    ("youcook2", "youcookii_annotations_trainval.json", "annotations", "sentence", "validation"),
    ("hacs", "HACS_segments_v1.1.1.json", "annotations", "label", "validation"),
])
def test_a_subset_in_the_record_is_read_only_when_it_is_training_data(
        recipe: str, file: str, items: str, text: str, held_out: str, tmp_path: Path) -> None:
    train = RECIPES[recipe].splits.train[0]
    path = tmp_path / file
    path.write_text(json.dumps(database({"trainvid001": train, "heldvid0001": held_out}, items, text)))
    report = run_recipe(RECIPES[recipe](), path, tmp_path / "default")
    assert event_texts(tmp_path / "default") == {"step of trainvid001"}
    assert report.skipped[f"subset {held_out}: held out, not training data (--subset {held_out} reads it)"] == 1
    assert report.subsets == [train]
    run_recipe(RECIPES[recipe](), path, tmp_path / "all", subsets=["all"])
    assert event_texts(tmp_path / "all") == {"step of trainvid001", "step of heldvid0001"}
    run_recipe(RECIPES[recipe](), path, tmp_path / "held", subsets=[held_out])
    assert event_texts(tmp_path / "held") == {"step of heldvid0001"}


def test_a_record_without_a_subset_is_not_taken_for_training_data(tmp_path: Path) -> None:
    path = tmp_path / "COIN.json"
    data = database({"trainvid001": "training", "nosubset001": "training"}, "annotation", "label")
    del data["database"]["nosubset001"]["subset"]  # type: ignore[index]  # a test's own dict
    path.write_text(json.dumps(data))
    report = run_recipe(RECIPES["coin"](), path, tmp_path / "w")
    assert event_texts(tmp_path / "w") == {"step of trainvid001"}
    assert any(reason.startswith("no official subset known") for reason in report.skipped)


def activitynet(videos: list[str]) -> str:
    return json.dumps({video: {"duration": 30.0, "timestamps": [[1.0, 5.0]], "sentences": [f"said in {video}"]}
                       for video in videos})


def test_a_held_out_file_is_refused_by_default_and_read_when_asked(tmp_path: Path) -> None:
    val = tmp_path / "val_1.json"
    val.write_text(activitynet(["v_val00000001"]))
    with pytest.raises(UserError, match="subset val_1: held out"):
        run_recipe(RECIPES["activitynet_captions"](), val, tmp_path / "default")
    assert not (tmp_path / "default").exists()
    run_recipe(RECIPES["activitynet_captions"](), val, tmp_path / "asked", subsets=["val_1"])
    assert event_texts(tmp_path / "asked") == {"said in v_val00000001"}


@pytest.mark.parametrize(("recipe", "train_name", "held_name"), [
    ("charades_sta", "charades_sta_train.txt", "charades_sta_test.txt"),
    ("qvhighlights", "highlight_train_release.jsonl", "highlight_val_release.jsonl"),
    ("didemo", "train_data.json", "test_data.json"),
    ("tacos", "train.json", "val.json"),
    ("activitynet_captions", "train.json", "val_2.json"),
])
def test_the_published_file_name_says_the_subset(recipe: str, train_name: str, held_name: str) -> None:
    splits = RECIPES[recipe].splits
    assert splits.of_file(train_name) in splits.train
    assert splits.of_file(held_name) in splits.held_out


def test_a_renamed_file_needs_its_subset_said(tmp_path: Path) -> None:
    renamed = tmp_path / "my_anet_copy.json"
    renamed.write_text(activitynet(["v_trn00000001"]))
    with pytest.raises(UserError, match="no official subset known"):
        run_recipe(RECIPES["activitynet_captions"](), renamed, tmp_path / "w")
    run_recipe(RECIPES["activitynet_captions"](), renamed, tmp_path / "w", file_subset="train")
    assert event_texts(tmp_path / "w") == {"said in v_trn00000001"}
    with pytest.raises(UserError, match="val_3"):
        run_recipe(RECIPES["activitynet_captions"](), renamed, tmp_path / "w", file_subset="val_3")


def test_queryd_reads_its_split_lists_beside_the_captions(tmp_path: Path) -> None:
    captions = {"video-trainvid001": [["a", "man", "talks"]], "video-testvid0001": [["a", "dog", "runs"]]}
    times = {"video-trainvid001": [[1.0, 3.0]], "video-testvid0001": [[2.0, 4.0]]}
    (tmp_path / "raw_captions_combined_filtered-v2.pkl").write_bytes(pickle.dumps(captions))
    (tmp_path / "times_captions_combined_filtered-v2.pkl").write_bytes(pickle.dumps(times))
    (tmp_path / "durations.json").write_text(json.dumps({"trainvid001": 10.0, "testvid0001": 10.0}))
    (tmp_path / "train_list.txt").write_text("video-trainvid001\n")
    (tmp_path / "test_list.txt").write_text("testvid0001\n")
    report = run_recipe(RECIPES["queryd"](), tmp_path / "raw_captions_combined_filtered-v2.pkl", tmp_path / "w",
                        videos=tmp_path / "durations.json")
    assert event_texts(tmp_path / "w") == {"a man talks"}
    assert report.skipped["subset test: held out, not training data (--subset test reads it)"] == 1


def test_the_cli_takes_subsets_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "COIN.json"
    path.write_text(json.dumps(database({"trainvid001": "training", "heldvid0001": "testing"}, "annotation",
                                        "label")))
    result = CliRunner().invoke(app, ["recipe", "coin", "--annotations", str(path), "--out", str(tmp_path / "w"),
                                      "--subset", "training,testing"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "training, testing" in result.output or "testing, training" in result.output
    assert len(event_texts(tmp_path / "w")) == 2
    refused = CliRunner().invoke(app, ["recipe", "coin", "--annotations", str(path), "--out",
                                       str(tmp_path / "x"), "--subset", "val"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2
    assert "coin has no subset 'val'" in refused.output and "training" in refused.output
    assert not (tmp_path / "x").exists()


def test_every_recipe_says_its_splits() -> None:
    for name, recipe in RECIPES.items():
        assert recipe.splits.train, name
        assert not set(recipe.splits.train) & set(recipe.splits.held_out), name
