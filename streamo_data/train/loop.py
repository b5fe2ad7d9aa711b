"""The reference training loop, in the spirit of nanoGPT: one readable function, no framework.

    streamo train RELEASE_DIR --out RUN_DIR --video-root VIDEOS [--config train.yaml] [--loss focal|ce]

It loads the release with `datasets.load_dataset`, computes (or reuses) per-frame features, trains
the baseline with the focal state loss (or plain cross-entropy, for the ablation), evaluates on the
validation split after every epoch, and writes into RUN_DIR: ``config.yaml``, ``metrics.jsonl`` (one
line per epoch), ``checkpoints/last.pt`` (model, optimiser, RNG states: a rerun resumes from it and
ends where an uninterrupted run would) and ``curves.png``.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.progress import Progress

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.plots.training import plot_curves
from streamo_data.runtime.runner import progress_bar
from streamo_data.store.io import write_atomic, write_text_atomic
from streamo_data.store.manifest import read_manifest
from streamo_data.train.data import Example, collate, load_examples, state_counts
from streamo_data.train.features import FEATURE_DIM, FeatureStore
from streamo_data.train.loss import alpha_from_counts, frame_focal_loss
from streamo_data.train.metrics import state_scores, timing_errors
from streamo_data.train.model import ModelConfig, StreamingBaseline


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    loss: str = "focal"  # "focal" | "ce"
    gamma: float = 2.0
    alpha: str = "batch"  # "batch" (the reference) | "split" (train split frequencies) | "none"
    seed: int = 0
    max_frames: int = 256
    dataset_config: str = "all"
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    text_buckets: int = 4096
    threads: int = 0  # 0: torch's default
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse nonsense before a run starts: 0 epochs would end in an empty history, a zero batch size
        in a division, d_model not divisible by heads deep inside torch."""
        whole = {"epochs": 1, "batch_size": 1, "warmup_steps": 0, "seed": 0, "max_frames": 1, "d_model": 1,
                 "layers": 1, "heads": 1, "text_buckets": 2, "threads": 0}
        for name, least in whole.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise UserError(f"training option {name} must be a whole number of at least {least}, not {value!r}")
        above_zero = {"lr": False, "weight_decay": True, "grad_clip": False, "gamma": True, "dropout": True}
        for name, zero_ok in above_zero.items():
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                    or value < 0 or (value == 0 and not zero_ok)):
                bound = "at least 0" if zero_ok else "above 0"
                raise UserError(f"training option {name} must be a finite number {bound}, not {value!r}")
        if self.dropout >= 1:
            raise UserError(f"training option dropout must be below 1, not {self.dropout!r}")
        if self.d_model % self.heads:
            raise UserError(f"training option d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        for name, allowed in (("loss", ("focal", "ce")), ("alpha", ("batch", "split", "none"))):
            if getattr(self, name) not in allowed:
                raise UserError(f"training option {name} must be one of {', '.join(allowed)}, not"
                                f" {getattr(self, name)!r}")

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> TrainConfig:
        """Options from a YAML file, overridden by the given ones; a UserError names what is wrong."""
        values: Any = {}
        if path:
            try:
                values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError) as error:
                raise UserError(f"{path}: not a readable YAML file ({' '.join(str(error).split())})") from error
            if not isinstance(values, dict):
                raise UserError(f"{path}: training options are a YAML mapping of option: value")
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"unknown training option(s): {sorted(unknown)}")
        return cls(**values)

    def model_config(self) -> ModelConfig:
        return ModelConfig(feature_dim=FEATURE_DIM, d_model=self.d_model, layers=self.layers, heads=self.heads,
                           dropout=self.dropout, text_buckets=self.text_buckets, max_frames=self.max_frames)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches(examples: list[Example], size: int, generator: torch.Generator) -> list[list[Example]]:
    order = torch.randperm(len(examples), generator=generator).tolist()
    return [[examples[i] for i in order[k:k + size]] for k in range(0, len(order), size)]


def loss_fn(config: TrainConfig, split_alpha: torch.Tensor) -> Any:
    if config.loss == "ce":
        return lambda logits, labels: frame_focal_loss(logits, labels, gamma=0.0, alpha="none")
    if config.loss != "focal":
        raise ValueError(f"loss must be 'focal' or 'ce', not {config.loss!r}")
    alpha = split_alpha if config.alpha == "split" else config.alpha
    return lambda logits, labels: frame_focal_loss(logits, labels, gamma=config.gamma, alpha=alpha)


@torch.no_grad()
def predict(model: StreamingBaseline, examples: list[Example], batch_size: int = 16) -> list[np.ndarray]:
    model.eval()
    predictions = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        batch = collate(chunk)
        logits = model(batch["features"], batch["text"], batch["offsets"], batch["question_frame"])
        for k, example in enumerate(chunk):
            predictions.append(logits[k, : len(example.labels)].argmax(-1).numpy())
    return predictions


def evaluate(model: StreamingBaseline, examples: list[Example], loss: Any) -> dict[str, Any]:
    predicted = predict(model, examples)
    truth = [e.labels for e in examples]
    with torch.no_grad():
        batch = collate(examples) if examples else None
        value = float(loss(model(batch["features"], batch["text"], batch["offsets"], batch["question_frame"]),
                           batch["labels"])) if batch else float("nan")
    return {"loss": value, "states": state_scores(predicted, truth), "timing": timing_errors(predicted, truth)}


def save_checkpoint(path: Path, model: StreamingBaseline, optimizer: torch.optim.Optimizer, epoch: int,
                    step: int, generator: torch.Generator) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
             "numpy_rng": np.random.get_state(), "python_rng": random.getstate()}
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def train(release_dir: Path, run_dir: Path, video_root: Path, config: TrainConfig,
          features_dir: Path | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """Train (or resume) a run; returns the last epoch's metrics."""
    read_manifest(release_dir)  # a folder that is not a release is refused before the run dir is made
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(
        {**asdict(config), "release": str(release_dir), "video_root": str(video_root)}, sort_keys=False))
    store = FeatureStore(features_dir or run_dir / "features", video_root)
    skipped: Counter[str] = Counter()
    train_set = load_examples(release_dir, "train", store, config.text_buckets, config.max_frames,
                              config.dataset_config, cache_dir, skipped)
    valid_set = load_examples(release_dir, "validation", store, config.text_buckets, config.max_frames,
                              config.dataset_config, cache_dir, skipped)
    write_text_atomic(run_dir / "skipped.json", json.dumps(dict(skipped), indent=2))
    if not train_set:
        why = f" usable ({', '.join(f'{n} {reason}' for reason, n in skipped.items())})" if skipped else ""
        raise UserError(f"{release_dir} has no training samples{why}: check --video-root (`streamo videos`)")
    split_alpha = alpha_from_counts(state_counts(train_set))
    loss = loss_fn(config, split_alpha)

    model = StreamingBaseline(config.model_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    checkpoint, metrics_path = run_dir / "checkpoints" / "last.pt", run_dir / "metrics.jsonl"
    start_epoch, step, history = 0, 0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        history = [json.loads(line) for line in metrics_path.read_text().splitlines()][:start_epoch]

    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    with progress_bar() as progress:
        bar = progress.add_task("train", total=config.epochs * steps_per_epoch, completed=start_epoch * steps_per_epoch)
        for epoch in range(start_epoch, config.epochs):
            model.train()
            started, losses = time.perf_counter(), []
            for batch_examples in batches(train_set, config.batch_size, generator):
                batch = collate(batch_examples)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * min(1.0, (step + 1) / max(1, config.warmup_steps))
                logits = model(batch["features"], batch["text"], batch["offsets"], batch["question_frame"])
                value = loss(logits, batch["labels"])
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                losses.append(value.item())
                step += 1
                _advance(progress, bar, epoch, losses[-1])
            elapsed = time.perf_counter() - started
            record = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)),
                      "steps_per_s": len(losses) / elapsed, "validation": evaluate(model, valid_set, loss)}
            history.append(record)
            write_text_atomic(metrics_path, "".join(json.dumps(m) + "\n" for m in history))
            save_checkpoint(checkpoint, model, optimizer, epoch, step, generator)
    plot_curves(history, run_dir / "curves.png")
    return {**history[-1], "skipped_samples": dict(skipped)}


def _advance(progress: Progress, bar: Any, epoch: int, loss: float) -> None:
    progress.update(bar, advance=1, description=f"train (epoch {epoch + 1}, loss {loss:.4f})")


def load_model(run_dir: Path) -> tuple[StreamingBaseline, TrainConfig, dict[str, Any]]:
    """The trained model of a run, its config, and the extra fields of its config file."""
    config_path, checkpoint = run_dir / "config.yaml", run_dir / "checkpoints" / "last.pt"
    for path in (config_path, checkpoint):
        if not path.exists():
            raise MissingInput(f"{run_dir} is not a training run: {path.relative_to(run_dir)} is missing (run"
                               f" `streamo train RELEASE --out {run_dir}` first)")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        extra = {key: raw.pop(key) for key in ("release", "video_root")}
        config = TrainConfig(**raw)
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as error:
        raise UserError(f"{config_path}: not the config of a training run ({error})") from error
    model = StreamingBaseline(config.model_config())
    try:
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
    except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as error:
        raise UserError(f"{checkpoint}: not a readable checkpoint ({error})") from error
    model.eval()
    return model, config, extra
