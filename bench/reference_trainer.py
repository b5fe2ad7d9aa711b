"""Does the reference trainer (the Streamo fork of ms-swift) train on what we export, with our loss?

Usage:
    STREAMO_REFERENCE_CHECKOUT=/path/to/Streamo STREAMO_SWIFT_PYTHON=/path/to/venv/bin/python \\
        python bench/reference_trainer.py [--steps 3]

The fork runs in an environment of its own, so this is a benchmark, not a test; without both variables it
says so and exits 0. An environment that works on CPU (x86_64, Python 3.11; seen 2026-12-03):
``python -m venv V && V/bin/pip install torch==2.14.1 torchvision==0.29.1`` (PyPI's torchvision does not
import beside the CPU torch 2.13.0), then ``V/bin/pip install transformers==4.57.1 datasets==3.6.0
peft==0.17.1 trl==0.23.1 accelerate modelscope==1.31.0 qwen_vl_utils==0.0.11 decord av msgspec
opencv-python-headless``, ``V/bin/pip install --no-deps -e $STREAMO_REFERENCE_CHECKOUT`` and the rest of its
``requirements/framework.txt`` (a plain ``pip install -e`` of the checkout spent 36 minutes resolving).

Three runs of ``swift sft --loss_type stream --custom_register_path <fork>/swift/plugin/loss.py <our plugin>
--new_special_tokens <fork>/special_token_v1.txt`` for ``--steps`` steps, on a tiny random Qwen2.5-VL built
*in the reference's environment* (``streamo_data.train.vlm.tiny``), over the bundled sample's release:

* ``videos``: ``streamo export stream-format --video-root`` (videos, ``<stream>`` turns), registered with
  the fork's own ``register_streaming_video_dataset`` decoding in memory (``save_frames=False``; its
  ``save_frames=True`` path writes ``frame_N.png.tmp`` with ``cv2.imwrite``, which picks the encoder by
  the extension and fails, so that path never writes a frame);
* ``frame_cache``: the same records with ``save_frames=True`` over ``streamo export frames --timing
  reference``'s folders, which the fork takes as its own cache (its ``.done`` marker): the check is that it
  decoded nothing (no "Extracted" line in its log, no file in the cache changed);
* ``images``: the image-format records of ``streamo export frames --records X.json`` (``<image>`` per
  frame turn, an ``images`` list), registered as a plain ms-swift dataset.

Our plugin also wraps the fork's ``stream`` loss: at every step it computes
:func:`streamo_data.train.loss.stream_focal_loss` on the same logits and labels and records both. Each run
reports the trainer's exit status, the losses it logged (finite or not), how many exported samples its
dataset kept, whether the three state tokens are one token each, and the largest difference between the
two losses. Results to bench/results/reference_trainer.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from vlm_tiny import WORK, sample_release  # noqa: E402  (one sample release for both VLM benchmarks)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
LOSS_HOOK = """
import json, sys, torch
from streamo_data.train.loss import stream_focal_loss as ours

def _wrap(original):
    def stream(outputs, labels, num_items_in_batch=None, trainer=None, **kwargs):
        loss = original(outputs, labels, num_items_in_batch=num_items_in_batch, trainer=trainer, **kwargs)
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        ids = [tokenizer.encode(t, add_special_tokens=False) for t in ("</Silence>", "</Standby>", "</Response>")]
        mine = ours(outputs.logits.float(), labels, [i[0] for i in ids], gamma=2.0, alpha="batch",
                    num_items_in_batch=num_items_in_batch)
        with open({record!r}, "a") as handle:
            handle.write(json.dumps({{"reference": float(loss), "ours": float(mine),
                                      "state_token_lengths": [len(i) for i in ids]}}) + "\\n")
        return loss
    stream._streamo_wrapped = True
    return stream

import swift.plugin.loss  # noqa: F401  (the trainer's; the --custom_register_path copy is module "loss")
for name in ("swift.plugin.loss", "loss"):
    mapping = getattr(sys.modules.get(name), "loss_mapping", None)
    if isinstance(mapping, dict) and "stream" in mapping and not getattr(mapping["stream"], "_streamo_wrapped", 0):
        mapping["stream"] = _wrap(mapping["stream"])
"""

STREAMING_DATASET = """from swift.llm.dataset.dataset import register_streaming_video_dataset
register_streaming_video_dataset(dataset_path={path!r}, dataset_name="streaming_video", fps=1.0, max_frames=None,
                                 save_frames={save!r}, frame_output_dir={frames!r})
"""

IMAGE_DATASET = """from swift.llm import DatasetMeta, register_dataset
register_dataset(DatasetMeta(dataset_name="streaming_video", dataset_path={path!r}))
"""


def run_variant(name: str, fork: Path, python: str, model: Path, dataset_plugin: str, steps: int,
                env: dict[str, str], work: Path) -> dict[str, object]:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "losses.jsonl"
    record.unlink(missing_ok=True)
    plugin = folder / "our_plugin.py"
    plugin.write_text(dataset_plugin + LOSS_HOOK.format(record=str(record)))
    swift = str(Path(python).parent / "swift")
    command = [swift, "sft", "--model", str(model), "--model_type", "qwen2_5_vl", "--dataset", "streaming_video",
               "--train_type", "full", "--torch_dtype", "float32", "--max_steps", str(steps),
               "--per_device_train_batch_size", "1", "--loss_type", "stream", "--custom_register_path",
               str(fork / "swift" / "plugin" / "loss.py"), str(plugin), "--new_special_tokens",
               str(fork / "special_token_v1.txt"), "--logging_steps", "1", "--save_strategy", "no",
               "--output_dir", str(folder / "output"), "--dataset_num_proc", "1", "--dataloader_num_workers", "0",
               "--max_length", "8192", "--report_to", "none", "--split_dataset_ratio", "0"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env={**env, "MAX_PIXELS": str(56 * 56), "MIN_PIXELS": str(56 * 56)},
                          capture_output=True, text=True)
    log = done.stdout + done.stderr
    (folder / "swift_sft.log").write_text(log)
    losses = [float(x) for x in re.findall(r"'loss': '?([0-9.eE+-]+|nan|inf)'?", log)]
    kept = re.findall(r"train_dataset: Dataset\(\{[^}]*num_rows: (\d+)", log.replace("\n", " "))
    pairs = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return {"returncode": done.returncode, "seconds": round(time.perf_counter() - started, 1),
            "kept_by_the_reference": int(kept[-1]) if kept else None, "logged_losses": losses,
            "losses_finite": bool(losses) and all(math.isfinite(x) for x in losses),
            "loss_pairs": pairs,
            "max_abs_difference": max((abs(p["reference"] - p["ours"]) for p in pairs), default=None),
            "state_tokens_single": bool(pairs) and all(p["state_token_lengths"] == [1, 1, 1] for p in pairs),
            "decoded_videos": len(re.findall(r"Extracted \d+ frames from", log)),
            "log_tail": log[-2000:] if done.returncode else ""}


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    checkout, python = os.environ.get("STREAMO_REFERENCE_CHECKOUT"), os.environ.get("STREAMO_SWIFT_PYTHON")
    if not checkout or not python:
        print("skipped: set STREAMO_REFERENCE_CHECKOUT (the Streamo fork) and STREAMO_SWIFT_PYTHON (a Python with"
              " it installed)")
        return
    fork, work = Path(checkout), WORK / "reference_trainer"
    work.mkdir(parents=True, exist_ok=True)
    release, videos = sample_release()
    cli = [sys.executable, "-m", "streamo_data.cli"]
    export = work / "stream_format.json"
    export.unlink(missing_ok=True)
    subprocess.run([*cli, "export", "stream-format", str(release), "--out", str(export), "--video-root",
                    str(videos.resolve())], check=True)
    exported = len(json.loads(export.read_text()))
    frames, images = work / "frames_reference", work / "images.json"
    if not frames.exists():
        subprocess.run([*cli, "export", "frames", str(release), "--video-root", str(videos.resolve()), "--out",
                        str(frames), "--timing", "reference", "--image-format", "png", "--records", str(images)],
                       check=True)
    model = work / "tiny_qwen"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([python, "-c", f"from pathlib import Path; from streamo_data.train.vlm.tiny import build_tiny_qwen;"
                    f" build_tiny_qwen(Path({str(model)!r}))"], check=True, env=env)
    results: dict[str, object] = {"exported_samples": exported, "image_records": len(json.loads(images.read_text()))}
    results["videos"] = run_variant("videos", fork, python, model, STREAMING_DATASET.format(
        path=str(export), save=False, frames=None), args.steps, env, work)
    before = snapshot(frames)
    results["frame_cache"] = run_variant("frame_cache", fork, python, model, STREAMING_DATASET.format(
        path=str(export), save=True, frames=str(frames)), args.steps, env, work)
    results["frame_cache_untouched"] = snapshot(frames) == before  # type: ignore[assignment]
    results["images"] = run_variant("images", fork, python, model, IMAGE_DATASET.format(path=str(images)),
                                    args.steps, env, work)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reference_trainer.json").write_text(json.dumps(results, indent=2))
    for name in ("videos", "frame_cache", "images"):
        shown = {k: v for k, v in results[name].items() if k not in ("log_tail", "loss_pairs")}  # type: ignore[union-attr]
        print(name, json.dumps(shown))
        if results[name]["returncode"]:  # type: ignore[index]
            print(results[name]["log_tail"])  # type: ignore[index]
    print("exported", exported, "image records", results["image_records"], "frame cache untouched",
          results["frame_cache_untouched"])


if __name__ == "__main__":
    main()
