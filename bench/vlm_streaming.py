"""Streaming inference with a key-value cache against recomputing the conversation at every frame.

Usage: .venv/bin/python bench/vlm_streaming.py [--frames 120]

The tiny random Qwen2.5-VL of the tests (56x56 frames, 4 image tokens each) streams a generated video frame
by frame through `streamo_data.train.vlm.predict.iter_replies` (one cache for the whole conversation), and
the same conversation is then run the way an uncached loop must: one forward pass over everything so far at
every frame. The figure is the median time per frame over each quarter of the video, and the ratio.
Results to bench/results/vlm_streaming.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamo_data.train.vlm.loop import load_model  # noqa: E402
from streamo_data.train.vlm.positions import rope_positions  # noqa: E402
from streamo_data.train.vlm.predict import CachedConversation, iter_replies, user_turns  # noqa: E402
from streamo_data.train.vlm.tiny import build_tiny_qwen  # noqa: E402

WORK = Path(__file__).parent / "_work" / "vlm_streaming"
RESULTS = Path(__file__).parent / "results"


class Timed(CachedConversation):
    """Records where each frame's turn ends in the token sequence, to replay it uncached."""

    ends: list[int]

    def feed(self, ids: list[int], pixels: torch.Tensor | None = None,
             grid: torch.Tensor | None = None) -> torch.Tensor:
        logits = super().feed(ids, pixels, grid)
        if grid is not None:
            self.ends.append(len(self.ids))
        return logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model_dir = WORK / "tiny"
    if not (model_dir / "config.json").exists():
        build_tiny_qwen(model_dir)
    loaded = load_model(model_dir)
    frames = np.random.default_rng(0).integers(0, 255, (args.frames, 56, 56, 3), dtype=np.uint8)
    talk = Timed(loaded)
    talk.ends = []
    cached: list[float] = []
    started = time.perf_counter()
    for _ in iter_replies(loaded, frames, user_turns(args.frames, 1.0, "What happens?"), conversation=talk):
        now = time.perf_counter()
        cached.append(now - started)
        started = now
    pixels = loaded.processor(images=list(frames), return_tensors="pt")
    per_image = len(pixels["pixel_values"]) // args.frames
    uncached: list[float] = []
    with torch.no_grad():
        for k, end in enumerate(talk.ends):
            ids = torch.tensor([talk.ids[:end]])
            grid = pixels["image_grid_thw"][:k + 1]
            begin = time.perf_counter()
            loaded.model(input_ids=ids, position_ids=rope_positions(loaded.model, ids, grid),
                         pixel_values=pixels["pixel_values"][:(k + 1) * per_image], image_grid_thw=grid)
            uncached.append(time.perf_counter() - begin)
    quarters = []
    for q in range(4):
        part = slice(q * args.frames // 4, (q + 1) * args.frames // 4)
        with_cache, without = statistics.median(cached[part]), statistics.median(uncached[part])
        quarters.append({"frames": f"{part.start}-{part.stop - 1}", "cached_ms": 1000 * with_cache,
                         "recomputed_ms": 1000 * without, "speedup": without / with_cache})
    result = {"frames": args.frames, "tokens": len(talk.ids), "quarters": quarters,
              "total_cached_s": sum(cached), "total_recomputed_s": sum(uncached)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vlm_streaming.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
