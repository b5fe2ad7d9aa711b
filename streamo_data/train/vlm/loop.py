"""Fine-tuning a Qwen2.5-VL / Qwen2-VL model folder on a release: the reference's conversation, labels on
the assistant's turns, the focal state loss, gradient accumulation, checkpoints and resume.

Written in the nanoGPT manner: one function owns the loop, and everything it needs (batches, the loss,
the checkpoint) is a small function above it. A rerun of the same command resumes from
``RUN/checkpoints/last.pt``. Each epoch's order is drawn from ``seed + epoch``, so a resumed run sees the
same batches as an uninterrupted one, and ends with the same weights.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamo_data.core.errors import UserError
from streamo_data.core.schema import StreamingSample
from streamo_data.formats.render import STATE_TOKENS, render_sample
from streamo_data.plots.training import plot_curves
from streamo_data.release.read import iter_release_samples
from streamo_data.runtime.runner import progress_bar
from streamo_data.store.io import write_atomic, write_text_atomic
from streamo_data.train.hf import state_token_ids
from streamo_data.train.loss import stream_focal_loss
from streamo_data.train.metrics import state_scores
from streamo_data.train.vlm.chat import IGNORE, encode_messages
from streamo_data.train.vlm.frames import FrameCache
from streamo_data.train.vlm.positions import rope_positions
from streamo_data.video.backends import DecodeError


@dataclass
class VLMConfig:
    epochs: int = 1
    batch_size: int = 1
    grad_accum: int = 1  # batches per optimiser step
    lr: float = 1e-4
    weight_decay: float = 0.0
    gamma: float = 2.0
    alpha: str = "batch"
    seed: int = 0
    max_frames: int = 64  # frames of a sample kept (its first ones); the rest of its turns are cut
    frame_side: int = 448  # frames are resized to side x side before the image processor
    bf16: bool = False  # autocast to bfloat16 (on hardware that has it)
    lora_rank: int = 0  # 0: full fine-tuning; else LoRA of this rank on the language model's attention

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "max_frames", "frame_side"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UserError(f"training option {name} must be a whole number of at least 1")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise UserError("training option lora_rank must be 0 (full fine-tuning) or a positive rank")


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    processor: Any
    state_ids: list[int]


def model_dir_of(folder: Path) -> Path:
    """The model folder a path names: a run of ``streamo train --model`` keeps its model in ``RUN/model``."""
    return folder / "model" if (folder / "model" / "config.json").exists() else folder


def load_model(model_dir: Path) -> Loaded:
    """The model, tokenizer and image processor of a model folder; the state tokens are added (and the
    embeddings resized) when the tokenizer lacks them, as the reference's ``--new_special_tokens`` does."""
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars say what runs; theirs would interleave with our output

    if not (model_dir / "config.json").exists():
        raise UserError(f"--model {model_dir}: not a model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    missing = [t for t in STATE_TOKENS.values() if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    if missing:
        tokenizer.add_tokens(missing)
        model.resize_token_embeddings(len(tokenizer))
    return Loaded(model, tokenizer, AutoImageProcessor.from_pretrained(model_dir), state_token_ids(tokenizer))


def with_lora(model: Any, rank: int) -> Any:
    """LoRA adapters on the language model's attention projections; the embeddings and the LM head train
    whole, because the state tokens are new rows in both and an adapter could not learn them."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)",
                        modules_to_save=["lm_head", "embed_tokens"])
    return get_peft_model(model, config)


def sample_inputs(sample: StreamingSample, frames: np.ndarray, loaded: Loaded, max_frames: int) -> dict[str, Any]:
    """One sample's token ids, labels, pixels and image grids; its first ``max_frames`` frames."""
    count = min(len(frames), sample.num_frames, max_frames)
    messages = render_sample(sample)["messages"]
    messages = messages[:1 + 2 * count]  # the system prompt, then a user and an assistant turn per frame
    pixels = loaded.processor(images=list(frames[:count]), return_tensors="pt")
    grid = pixels["image_grid_thw"]
    merge = int(getattr(loaded.processor, "merge_size", 2))
    encoded = encode_messages(messages, [int(n) for n in grid.prod(-1) // merge**2], loaded.tokenizer)
    return {"input_ids": encoded.input_ids, "labels": encoded.labels, "pixel_values": pixels["pixel_values"],
            "image_grid_thw": grid}


def collate(items: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        labels[row, :n] = torch.tensor(item["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask,
            "pixel_values": torch.cat([item["pixel_values"] for item in items]),
            "image_grid_thw": torch.cat([item["image_grid_thw"] for item in items])}


def batch_logits(model: Any, batch: dict[str, torch.Tensor], config: VLMConfig) -> torch.Tensor:
    """The model's float32 logits over a collated batch, at Qwen-VL's 3-D positions."""
    with torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16, enabled=config.bf16):
        positions = rope_positions(model, batch["input_ids"], batch["image_grid_thw"], batch["attention_mask"])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=positions,
                       pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"]).logits
    return logits.float()


def batch_loss(model: Any, batch: dict[str, torch.Tensor], state_ids: list[int], config: VLMConfig) -> torch.Tensor:
    return stream_focal_loss(batch_logits(model, batch, config), batch["labels"], state_ids, gamma=config.gamma,
                             alpha=config.alpha)


def load_items(release_dir: Path, cache: FrameCache, loaded: Loaded, config: VLMConfig,
               skipped: Counter[str], split: str = "train") -> list[dict[str, Any]]:
    """Every sample's inputs of a split; a sample whose video is missing or undecodable is counted, not fatal."""
    items = []
    with progress_bar(transient=True) as progress:
        for sample in progress.track(list(iter_release_samples(release_dir, split)), description=f"frames ({split})"):
            if not (cache.video_root / sample.video_path).exists():
                skipped["video not found under --video-root"] += 1
                continue
            try:
                frames = cache.get(sample.video_id, sample.video_path, sample.fps)
            except DecodeError:
                skipped["video unreadable (no frame decodes)"] += 1
                continue
            items.append(sample_inputs(sample, frames, loaded, config.max_frames))
    return items


def validate(model: Any, items: list[dict[str, Any]], state_ids: list[int], config: VLMConfig,
             pad_id: int) -> dict[str, Any]:
    """Teacher-forced validation, as the baseline's: the loss, and at every state label the most likely of
    the three state tokens against the true one (per-state precision/recall/F1)."""
    model.eval()
    losses, predicted, truth = [], [], []
    ids = torch.tensor(state_ids)
    with torch.no_grad():
        for item in items:
            batch = collate([item], pad_id)
            logits = batch_logits(model, batch, config)
            losses.append(float(stream_focal_loss(logits, batch["labels"], state_ids, gamma=config.gamma,
                                                  alpha=config.alpha)))
            labels = batch["labels"][0, 1:]
            at = torch.nonzero(torch.isin(labels, ids)).flatten()
            chosen = logits[0, at][:, ids].argmax(-1)
            predicted.append(chosen.numpy())
            truth.append(np.array([state_ids.index(int(t)) for t in labels[at]], np.int64))
    model.train()
    return {"loss": sum(losses) / len(losses), "states": state_scores(predicted, truth)}


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Written aside and moved in: a run killed while saving keeps its previous checkpoint."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def train_vlm(release_dir: Path, run_dir: Path, video_root: Path, model_dir: Path, config: VLMConfig,
              frames_dir: Path | None = None) -> dict[str, Any]:
    """Train (or resume) a run; returns the last epoch's metrics."""
    torch.manual_seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.json", json.dumps(
        {**asdict(config), "model": str(model_dir), "release": str(release_dir), "video_root": str(video_root)},
        indent=2))
    loaded = load_model(model_dir)
    skipped: Counter[str] = Counter()
    cache = FrameCache(frames_dir or run_dir / "frames", video_root, config.frame_side)
    items = load_items(release_dir, cache, loaded, config, skipped)
    held_out = load_items(release_dir, cache, loaded, config, Counter(), "validation")
    if not items:
        raise UserError(f"{release_dir} has no trainable samples under {video_root} ({dict(skipped)})")
    if config.lora_rank:
        loaded.model = with_lora(loaded.model, config.lora_rank)
    trainable = [parameter for parameter in loaded.model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    checkpoint, metrics_path = run_dir / "checkpoints" / "last.pt", run_dir / "metrics.jsonl"
    start_epoch, step, history = 0, 0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        loaded.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        history = [json.loads(line) for line in metrics_path.read_text().splitlines()][:start_epoch]
    pad_id = loaded.tokenizer.pad_token_id or 0
    loaded.model.train()
    for epoch in range(start_epoch, config.epochs):
        order = list(range(len(items)))
        random.Random(config.seed + epoch).shuffle(order)
        batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        losses: list[float] = []
        optimizer.zero_grad()
        for index, members in enumerate(batches):
            loss = batch_loss(loaded.model, collate([items[k] for k in members], pad_id), loaded.state_ids, config)
            (loss / config.grad_accum).backward()
            losses.append(float(loss))
            if (index + 1) % config.grad_accum == 0 or index + 1 == len(batches):
                optimizer.step()
                optimizer.zero_grad()
                step += 1
        entry: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": sum(losses) / len(losses),
                                 "samples": len(items)}
        if held_out:
            entry["validation"] = validate(loaded.model, held_out, loaded.state_ids, config, pad_id)
        history.append(entry)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(checkpoint, {"model": loaded.model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "epoch": epoch, "step": step})
        write_text_atomic(metrics_path, "".join(json.dumps(entry) + "\n" for entry in history))
    write_text_atomic(run_dir / "skipped.json", json.dumps(dict(skipped), indent=2))
    plot_curves(history, run_dir / "curves.png")
    # RUN/model: what predict and a Hub upload read; LoRA adapters are merged into it
    model = loaded.model.merge_and_unload() if config.lora_rank else loaded.model
    for part in (model, loaded.tokenizer, loaded.processor):
        part.save_pretrained(run_dir / "model")
    return {**history[-1], "skipped_samples": dict(skipped)}
