"""The reference training loop on a real release of real videos, its resume, evaluation, metrics, and
the Hugging Face adapter on a tiny randomly initialised causal LM (no weights downloaded)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.release.write import write_release
from streamo_data.runtime.runner import Executor
from streamo_data.stages.annotate_offline import run_annotate_offline
from streamo_data.stages.build import run_build
from streamo_data.stages.ingest import run_ingest
from streamo_data.store.workdir import SAMPLES
from streamo_data.train.features import FEATURE_DIM, FeatureStore
from streamo_data.train.loop import TrainConfig, load_model, train
from streamo_data.train.loss import stream_focal_loss
from streamo_data.train.metrics import state_scores, timing_errors

LOCAL = Executor(kind="local")
TINY = {"epochs": 2, "batch_size": 4, "d_model": 32, "layers": 1, "heads": 2, "max_frames": 64, "warmup_steps": 2}


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("train_work")
    run_ingest(sample_videos, work, 1.0, LOCAL)
    run_annotate_offline(work, LOCAL)
    run_build(work, ["temporal_grounding", "dense_captioning", "narration"], 0, LOCAL)
    out = work / "release"
    write_release(work / SAMPLES, out, validation_fraction=0.3)
    return out


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("features")


def test_a_run_writes_metrics_checkpoint_and_plot(release: Path, sample_videos: Path, features: Path,
                                                  tmp_path: Path) -> None:
    final = train(release, tmp_path / "run", sample_videos, TrainConfig(**TINY), features,
                  cache_dir=str(tmp_path / "hf"))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2] and {**lines[-1], "skipped_samples": {}} == final
    assert set(final["validation"]["states"]) == {"silence", "standby", "response", "accuracy"}
    assert final["steps_per_s"] > 0 and np.isfinite(final["train_loss"])
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1000, 400)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_resume_from_the_last_checkpoint_ends_where_an_uninterrupted_run_ends(
    release: Path, sample_videos: Path, features: Path, tmp_path: Path
) -> None:
    cache = str(tmp_path / "hf")
    whole = train(release, tmp_path / "whole", sample_videos, TrainConfig(**TINY), features, cache_dir=cache)
    train(release, tmp_path / "split", sample_videos, TrainConfig(**{**TINY, "epochs": 1}), features, cache_dir=cache)
    resumed = train(release, tmp_path / "split", sample_videos, TrainConfig(**TINY), features, cache_dir=cache)
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-6)
    assert resumed["validation"] == whole["validation"]
    a, _, _ = load_model(tmp_path / "whole")
    b, _, _ = load_model(tmp_path / "split")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name


def test_cli_train_then_evaluate(release: Path, sample_videos: Path, features: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("\n".join(f"{k}: {v}" for k, v in TINY.items()))
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(release), "--out", str(tmp_path / "run"), "--video-root",
                                 str(sample_videos), "--config", str(config), "--loss", "ce",
                                 "--features-dir", str(features)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), str(release)])
    assert result.exit_code == 0, result.output
    assert "response timing" in result.output
    report = json.loads((tmp_path / "run" / "evaluation_validation.json").read_text())
    predictions = (tmp_path / "run" / "predictions_validation.jsonl").read_text().splitlines()
    assert len(predictions) == report["samples"] > 0
    frames = sum(len(json.loads(line)["predicted"]) for line in predictions)
    assert sum(map(sum, report["confusion"])) == frames
    assert len(report["timing_offsets"]) == report["timing"]["responses"] - report["timing"]["missed"]
    for name in ("confusion_validation.png", "timing_validation.png"):
        assert (tmp_path / "run" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_options_and_missing_videos_are_clear_errors(release: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.load(None, learning_rate=0.1)
    result = CliRunner().invoke(app, ["train", str(release), "--out", str(tmp_path / "run"), "--video-root",
                                      str(tmp_path), "--epochs", "1"])
    assert result.exit_code == 2 and "not found under" in result.output


def test_features_are_decoded_once(sample_videos: Path, tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, sample_videos)
    first = store.get("v", "synthetic_00.mp4", 1.0)
    assert first.shape == (30, FEATURE_DIM)
    cached = tmp_path / "v@1.npy"
    stamp = cached.stat().st_mtime_ns
    assert np.array_equal(store.get("v", "synthetic_00.mp4", 1.0), first) and cached.stat().st_mtime_ns == stamp


def test_metrics_on_a_hand_worked_example() -> None:
    truth = [np.array([0, 0, 1, 1, 2, 0, 2]), np.array([0, 2, 0])]
    predicted = [np.array([0, 1, 1, 1, 0, 2, 2]), np.array([0, 0, 0])]
    scores = state_scores(predicted, truth)
    assert scores["response"] == {"precision": 0.5, "recall": 1 / 3, "f1": pytest.approx(0.4), "support": 3}
    timing = timing_errors(predicted, truth)
    # sample 1: true responses at 4 and 6, predicted at 5 and 6 -> errors 1 and 0; sample 2: missed
    assert timing["missed"] == 1 and timing["responses"] == 3
    assert timing["mean_abs_frames"] == 0.5 and timing["within_1_frame"] == pytest.approx(2 / 3)


def test_hf_trainer_with_the_focal_state_loss_on_a_tiny_random_model(tmp_path: Path) -> None:
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    from streamo_data.train.hf import make_compute_loss_func

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64))
    states = [60, 61, 62]
    ids = torch.randint(0, 60, (8, 16))
    ids[:, 1::2] = torch.tensor(states)[torch.randint(0, 3, (8, 8))]  # a state token after every frame token
    labels = ids.clone()
    labels[:, :4] = -100
    compute = make_compute_loss_func(states)
    outputs = model(input_ids=ids[:2])
    assert compute(outputs, labels[:2]).item() == pytest.approx(
        stream_focal_loss(outputs.logits, labels[:2], states).item(), abs=1e-6)

    data = Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})
    args = TrainingArguments(output_dir=str(tmp_path / "hf"), per_device_train_batch_size=4, max_steps=3,
                             learning_rate=1e-3, report_to=[], use_cpu=True, logging_steps=1, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=data, compute_loss_func=compute)
    result = trainer.train()
    assert result.global_step == 3 and np.isfinite(result.training_loss)


def test_a_release_without_a_validation_split_still_trains(release: Path, sample_videos: Path, features: Path,
                                                           tmp_path: Path) -> None:
    from streamo_data.store.workdir import SAMPLES

    train_only = tmp_path / "train_only"
    write_release(release.parent / SAMPLES, train_only, validation_fraction=0.0)
    final = train(train_only, tmp_path / "run", sample_videos, TrainConfig(**{**TINY, "epochs": 1}), features,
                  cache_dir=str(tmp_path / "hf"))
    assert final["validation"]["states"]["response"]["support"] == 0 and np.isfinite(final["train_loss"])
