"""The VLM fine-tuning path on CPU with a tiny random Qwen2.5-VL, and what a real 3B run needs per 1,000 samples.

Usage: python bench/vlm_tiny.py [--steps 20] [--release DIR --video-root V] [--frames-from RELEASE]

Without a release, the bundled sample is ingested, annotated offline and built (temporal grounding, dense
captioning) into bench/_work/vlm. The tiny model (`streamo_data.train.vlm.tiny`, 56x56 frames: 4 image
tokens a frame) trains for ``--steps`` batches of one sample; each step is timed in three parts: data
(frames from the cache, the image processor, tokens and labels, collate), forward (with the focal state
loss) and backward plus the optimiser step. Peak RSS is the process's own maximum. The 3B figures are
computed from the release's frame counts with Qwen2.5-VL's own rule (448x448 frames: 32x32 patches merged
2x2 into 256 tokens a frame) and the tokenizer's count of each sample's text, capped at 64 frames as
`streamo train --model` does by default.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamo_data.formats.render import render_sample  # noqa: E402
from streamo_data.release.read import iter_release_samples  # noqa: E402
from streamo_data.release.write import write_release  # noqa: E402
from streamo_data.runtime.runner import Executor  # noqa: E402
from streamo_data.sources.sample_data import make_sample_videos  # noqa: E402
from streamo_data.stages.annotate_offline import run_annotate_offline  # noqa: E402
from streamo_data.stages.build import run_build  # noqa: E402
from streamo_data.stages.ingest import run_ingest  # noqa: E402
from streamo_data.store.workdir import SAMPLES  # noqa: E402
from streamo_data.train.vlm.chat import STREAM  # noqa: E402
from streamo_data.train.vlm.frames import FrameCache  # noqa: E402
from streamo_data.train.vlm.loop import VLMConfig, batch_loss, collate, load_model, sample_inputs  # noqa: E402
from streamo_data.train.vlm.tiny import build_tiny_qwen  # noqa: E402

WORK = Path(__file__).parent / "_work" / "vlm"
RESULTS = Path(__file__).parent / "results"
TOKENS_3B_FRAME = (448 // 14) ** 2 // 4  # 256


def sample_release() -> tuple[Path, Path]:
    videos, work, release = WORK / "videos", WORK / "work", WORK / "release"
    if not (release / "manifest.json").exists():
        make_sample_videos(videos, num_synthetic=6, seed=3)
        local = Executor(kind="local")
        run_ingest(videos, work, 1.0, local)
        run_annotate_offline(work, local)
        run_build(work, ["temporal_grounding", "dense_captioning"], 0, local)
        write_release(work / SAMPLES, release, validation_fraction=0.0)
    return release, videos


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--release", type=Path)
    parser.add_argument("--video-root", type=Path)
    parser.add_argument("--frames-from", type=Path, help="Another release (metadata only, e.g. the 465K build of"
                        " bench/clean_corpus.py) whose frame counts the 3B figures also use.")
    args = parser.parse_args()
    release, videos = (args.release, args.video_root) if args.release else sample_release()
    torch.manual_seed(0)
    loaded = load_model(build_tiny_qwen(WORK / "tiny"))
    config = VLMConfig(frame_side=56, max_frames=64)
    cache = FrameCache(WORK / "frames", videos, 56)
    samples = list(iter_release_samples(release, "train"))
    for sample in samples:  # decoded once, as a run does before its first epoch
        cache.get(sample.video_id, sample.video_path, sample.fps)
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-4)
    data_s, forward_s, backward_s, tokens = [], [], [], 0
    for step in range(args.steps):
        sample = samples[step % len(samples)]
        start = time.perf_counter()
        batch = collate([sample_inputs(sample, cache.get(sample.video_id, sample.video_path, sample.fps), loaded,
                                       config.max_frames)], loaded.tokenizer.pad_token_id)
        loaded_at = time.perf_counter()
        loss = batch_loss(loaded.model, batch, loaded.state_ids, config)
        forward_at = time.perf_counter()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        done = time.perf_counter()
        data_s.append(loaded_at - start)
        forward_s.append(forward_at - loaded_at)
        backward_s.append(done - forward_at)
        tokens += batch["input_ids"].numel()
    total = sum(data_s) + sum(forward_s) + sum(backward_s)
    frames = [min(s.num_frames, 64) for s in samples]
    text = [len(loaded.tokenizer.encode(str([m["content"] for m in render_sample(s)["messages"]]).replace(STREAM, ""),
                                        add_special_tokens=False)) for s in samples]
    per_sample_tokens = statistics.mean(f * TOKENS_3B_FRAME + t for f, t in zip(frames, text, strict=True))
    result = {
        "steps": args.steps, "tokens_per_s": tokens / total, "peak_rss_mib": resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024,
        "median_step_s": {"data": statistics.median(data_s), "forward": statistics.median(forward_s),
                          "backward_and_step": statistics.median(backward_s)},
        "release_samples": len(samples), "mean_frames_per_sample": statistics.mean(frames),
        "per_1000_samples_3b": {"frames": 1000 * statistics.mean(frames), "tokens": 1000 * per_sample_tokens,
                                "image_tokens": 1000 * statistics.mean(frames) * TOKENS_3B_FRAME},
    }
    if args.frames_from:
        from streamo_data.store.manifest import read_manifest
        from streamo_data.store.tables import read_table

        counts = [min(n, 64) for shard in read_manifest(args.frames_from).shards
                  for n in read_table(args.frames_from / shard.path, columns=["num_frames"])["num_frames"].to_pylist()]
        mean = statistics.mean(counts)
        result["per_1000_samples_3b_of_" + args.frames_from.name] = {
            "samples": len(counts), "frames": 1000 * mean, "image_tokens": 1000 * mean * TOKENS_3B_FRAME,
            "tokens": 1000 * (mean * TOKENS_3B_FRAME + statistics.mean(text))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vlm_tiny.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
