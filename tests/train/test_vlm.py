"""Fine-tuning a real VLM architecture: a tiny random Qwen2.5-VL built here (no download), on a real release
with real videos. Labels cover exactly the assistant's tokens, one image per frame turn, the state tokens are
single tokens, a few steps lower the loss on a fixed batch, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.release.read import iter_release_samples
from streamo_data.release.write import write_release
from streamo_data.store.workdir import SAMPLES
from streamo_data.train.vlm.chat import IGNORE
from streamo_data.train.vlm.frames import FrameCache
from streamo_data.train.vlm.loop import VLMConfig, batch_loss, collate, load_model, sample_inputs, train_vlm
from streamo_data.train.vlm.tiny import IM_END, IMAGE_PAD, VISION_START, build_tiny_qwen
from tests.conftest import built_work_dir

SMALL = {"frame_side": 56, "max_frames": 6}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"))


@pytest.fixture(scope="module")
def release(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vlm_release")
    work = built_work_dir(sample_videos, root / "work", ["temporal_grounding", "dense_captioning"])
    write_release(work / SAMPLES, root / "release", validation_fraction=0.0)
    return root / "release"


def test_labels_cover_exactly_the_assistant_turns_and_each_frame_is_one_image(
        tiny: Path, release: Path, sample_videos: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny)
    assert all(isinstance(i, int) for i in loaded.state_ids) and len(set(loaded.state_ids)) == 3
    sample = next(iter_release_samples(release, "train"))
    frames = FrameCache(tmp_path, sample_videos, 56).get(sample.video_id, sample.video_path, sample.fps)
    item = sample_inputs(sample, frames, loaded, max_frames=6)
    count = min(6, sample.num_frames)
    tokenizer = loaded.tokenizer
    ids, labels = item["input_ids"], item["labels"]
    assert ids.count(tokenizer.convert_tokens_to_ids(VISION_START)) == count == len(item["image_grid_thw"])
    image_tokens = int((item["image_grid_thw"].prod(-1) // 4).sum())
    assert ids.count(tokenizer.convert_tokens_to_ids(IMAGE_PAD)) == image_tokens
    labelled = tokenizer.decode([t for t in labels if t != IGNORE])
    from streamo_data.formats.render import render_sample

    assistant = [m["content"] for m in render_sample(sample)["messages"][1:1 + 2 * count] if m["role"] == "assistant"]
    assert labelled == "".join(content + IM_END for content in assistant)
    assert sum(1 for t in labels if t in loaded.state_ids) == count  # one state token a frame, each one token


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tiny: Path, release: Path, sample_videos: Path,
                                                     tmp_path: Path) -> None:
    loaded = load_model(tiny)
    cache = FrameCache(tmp_path, sample_videos, 56)
    samples = list(iter_release_samples(release, "train"))[:2]
    batch = collate([sample_inputs(s, cache.get(s.video_id, s.video_path, s.fps), loaded, 6) for s in samples],
                    loaded.tokenizer.pad_token_id)
    config = VLMConfig(**SMALL)
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=3e-3)
    first = float(batch_loss(loaded.model, batch, loaded.state_ids, config))
    for _ in range(8):
        optimizer.zero_grad()
        batch_loss(loaded.model, batch, loaded.state_ids, config).backward()
        optimizer.step()
    assert float(batch_loss(loaded.model, batch, loaded.state_ids, config)) < first * 0.8


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tiny: Path, release: Path, sample_videos: Path,
                                                           tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    whole = train_vlm(release, tmp_path / "whole", sample_videos, tiny,
                      VLMConfig(epochs=2, batch_size=2, grad_accum=2, **SMALL), frames)
    train_vlm(release, tmp_path / "cut", sample_videos, tiny, VLMConfig(epochs=1, batch_size=2, grad_accum=2, **SMALL),
              frames)
    resumed = train_vlm(release, tmp_path / "cut", sample_videos, tiny,
                        VLMConfig(epochs=2, batch_size=2, grad_accum=2, **SMALL), frames)
    assert resumed["train_loss"] == whole["train_loss"] and resumed["step"] == whole["step"]
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_the_train_command_takes_a_model_folder(tiny: Path, release: Path, sample_videos: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(release), "--out", str(tmp_path / "run"), "--video-root",
                                      str(sample_videos), "--model", str(tiny), "--epochs", "1", "--frame-side", "56",
                                      "--max-frames", "4"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.jsonl").exists() and "train loss" in result.output
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0  # as the baseline's run folder has
    wrong = CliRunner().invoke(app, ["train", str(release), "--out", str(tmp_path / "x"), "--video-root",
                                     str(sample_videos), "--model", str(tmp_path)])
    assert wrong.exit_code == 2 and "not a model folder" in wrong.output


def test_streaming_inference_gives_one_state_per_frame_of_a_20_frame_video(tiny: Path, tmp_path: Path) -> None:
    from streamo_data.core.align import State
    from tests.conftest import write_video

    video = write_video(tmp_path / "twenty.mp4", 100, 5.0)  # 20 s: 20 frames at 1 fps
    result = CliRunner().invoke(app, ["predict", str(tiny), "--video", str(video), "--question", "What opens?",
                                      "--frame-side", "56"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("frame ")]
    assert [line.split(":")[0] for line in lines] == [f"frame {k}" for k in range(20)]
    assert all(line.split(": ")[1].split()[0] in {s.value for s in State} for line in lines)


def test_lora_trains_adapters_and_leaves_the_vision_tower_as_it_was(tiny: Path, release: Path, sample_videos: Path,
                                                                    tmp_path: Path) -> None:
    from safetensors.torch import load_file

    result = train_vlm(release, tmp_path / "lora", sample_videos, tiny, VLMConfig(epochs=1, lora_rank=4, **SMALL))
    assert result["train_loss"] > 0
    base = load_file(tiny / "model.safetensors")
    tuned = load_file(tmp_path / "lora" / "model" / "model.safetensors")  # adapters merged in
    vision = [name for name in base if "visual" in name]
    assert vision and all(torch.equal(base[name], tuned[name]) for name in vision)
    attention = [name for name in base if "visual" not in name and name.endswith("q_proj.weight")]
    assert attention and any(not torch.equal(base[name], tuned[name]) for name in attention)


def test_evaluate_scores_a_vlm_run_by_streaming_each_sample(tiny: Path, release: Path, sample_videos: Path,
                                                            tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_vlm(release, run, sample_videos, tiny, VLMConfig(epochs=1, frame_side=56, max_frames=3))
    result = CliRunner().invoke(app, ["evaluate", str(run), str(release), "--split", "train"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    report = json.loads((run / "evaluation_train.json").read_text())
    samples = list(iter_release_samples(release, "train"))
    assert report["samples"] == len(samples)
    frames = sum(min(3, s.num_frames) for s in samples)
    assert sum(sum(row) for row in report["confusion"]) == frames  # one predicted state for every frame


def test_cached_streaming_gives_the_logits_of_one_pass_over_the_whole_conversation(tiny: Path, release: Path,
                                                                                   sample_videos: Path,
                                                                                   tmp_path: Path) -> None:
    """The key-value cache and the per-chunk M-RoPE positions are right only if every logit the streaming
    loop acts on equals the logit of one uncached forward pass over the same tokens and frames."""
    from streamo_data.train.vlm.positions import rope_positions
    from streamo_data.train.vlm.predict import CachedConversation, stream_replies

    loaded = load_model(tiny)
    seen: list[tuple[int, torch.Tensor]] = []

    class Recording(CachedConversation):
        def feed(self, ids: list[int], pixels: torch.Tensor | None = None,
                 grid: torch.Tensor | None = None) -> torch.Tensor:
            logits = super().feed(ids, pixels, grid)
            seen.append((len(self.ids) - 1, logits))
            return logits

    sample = next(iter_release_samples(release, "train"))
    frames = FrameCache(tmp_path, sample_videos, 56).get(sample.video_id, sample.video_path, sample.fps)[:6]
    from streamo_data.formats.render import render_sample

    turns = [m["content"] for m in render_sample(sample)["messages"] if m["role"] == "user"][:len(frames)]
    talk = Recording(loaded)
    replies = stream_replies(loaded, frames, turns, max_new_tokens=4, conversation=talk)
    # teacher-forced too, so an answer's multi-token chunks are covered whatever the random model says
    talk.feed(loaded.tokenizer.encode("<Response> the person opens the door", add_special_tokens=False))
    assert [r.frame for r in replies] == list(range(len(frames)))
    ids = torch.tensor([talk.ids])
    grids = torch.cat(talk.grids)
    pixels = loaded.processor(images=list(frames), return_tensors="pt")
    assert torch.equal(pixels["image_grid_thw"], grids)
    with torch.no_grad():
        whole = loaded.model(input_ids=ids, position_ids=rope_positions(loaded.model, ids, grids),
                             pixel_values=pixels["pixel_values"], image_grid_thw=grids).logits[0].float()
    assert len(seen) >= len(frames) + 1
    for index, logits in seen:
        assert torch.allclose(logits, whole[index], atol=1e-4), index
    # and the positions are Qwen-VL's 3-D ones: an image of 2x2 merged tokens spans 2 positions, not 4
    positions = rope_positions(loaded.model, ids, grids)
    assert int(positions.max()) + 1 < len(talk.ids)


def test_training_sees_qwen_vl_3d_positions_as_the_processor_path_gives_them(tiny: Path, release: Path,
                                                                             sample_videos: Path,
                                                                             tmp_path: Path) -> None:
    """transformers 5 falls back to 1-D positions over the vision tokens unless it is told which tokens are
    image tokens; our batches must give the logits of the path where it is told (the processor's)."""
    from streamo_data.train.vlm.positions import rope_positions

    loaded = load_model(tiny)
    cache = FrameCache(tmp_path, sample_videos, 56)
    samples = list(iter_release_samples(release, "train"))[:2]
    batch = collate([sample_inputs(s, cache.get(s.video_id, s.video_path, s.fps), loaded, 4) for s in samples],
                    loaded.tokenizer.pad_token_id)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")}
    image_id = loaded.model.config.image_token_id
    with torch.no_grad():
        ours = loaded.model(**inputs, position_ids=rope_positions(loaded.model, batch["input_ids"],
                                                                  batch["image_grid_thw"],
                                                                  batch["attention_mask"])).logits
        told = loaded.model(**inputs, mm_token_type_ids=(batch["input_ids"] == image_id).int()).logits
        loaded.model.model.rope_deltas = None
        untold = loaded.model(**inputs).logits
    real = batch["attention_mask"].bool()
    assert torch.allclose(ours[real], told[real], atol=1e-5)
    assert not torch.allclose(ours[real], untold[real], atol=1e-3)


def test_validation_is_teacher_forced_with_one_state_prediction_per_state_label(tiny: Path, release: Path,
                                                                                sample_videos: Path,
                                                                                tmp_path: Path) -> None:
    from streamo_data.train.vlm.loop import validate

    loaded = load_model(tiny)
    cache = FrameCache(tmp_path, sample_videos, 56)
    samples = list(iter_release_samples(release, "train"))[:2]
    items = [sample_inputs(s, cache.get(s.video_id, s.video_path, s.fps), loaded, 4) for s in samples]
    result = validate(loaded.model, items, loaded.state_ids, VLMConfig(**SMALL), loaded.tokenizer.pad_token_id)
    assert result["loss"] > 0
    support = sum(result["states"][state]["support"] for state in ("silence", "standby", "response"))
    assert support == sum(min(4, s.num_frames) for s in samples)  # one state label a frame turn
    assert loaded.model.training  # back in training mode for the loop
