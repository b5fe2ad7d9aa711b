"""Does the reference trainer (the Streamo fork of ms-swift) train on what `streamo export stream-format` writes?

Usage:
    STREAMO_REFERENCE_CHECKOUT=/path/to/Streamo STREAMO_SWIFT_PYTHON=/path/to/venv/bin/python \\
        python bench/reference_trainer.py [--steps 3]

It needs the fork installed in an environment of its own (`python -m venv V && V/bin/pip install torch==2.13.0
&& V/bin/pip install -e $STREAMO_REFERENCE_CHECKOUT`, its pins: transformers<4.58, datasets<4, ...), so it is
a benchmark, not a test: without both variables it says so and exits 0. Steps:

1. the bundled sample's release (as `bench/vlm_tiny.py` builds it) exported with `streamo export stream-format
   --video-root` as the reference's JSON list;
2. a tiny random Qwen2.5-VL built *in the reference's environment* (`streamo_data.train.vlm.tiny`, so its
   transformers writes the config it reads);
3. a plugin of ours, beside the run, that registers that export with the fork's own
   `register_streaming_video_dataset` (its plugin hard-codes `./dataset/example/stream_format.json`);
4. `swift sft --loss_type stream --custom_register_path <fork>/swift/plugin/loss.py <our plugin>
   --new_special_tokens <fork>/special_token_v1.txt` for ``--steps`` steps on CPU.

It reports the trainer's exit status, the losses it logged (finite or not), how many of the exported
samples its dataset kept, and whether the three state tokens are one token each for the trained tokenizer.
Results to bench/results/reference_trainer.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from vlm_tiny import WORK, sample_release  # noqa: E402  (one sample release for both VLM benchmarks)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PLUGIN = '''from swift.llm.dataset.dataset import register_streaming_video_dataset
register_streaming_video_dataset(dataset_path={path!r}, dataset_name="streaming_video", fps=1.0, max_frames=None,
                                 save_frames=True, frame_output_dir={frames!r})
'''


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
    export = work / "stream_format.json"
    export.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "streamo_data.cli", "export", "stream-format", str(release), "--out",
                    str(export), "--video-root", str(videos.resolve())], check=True)
    exported = len(json.loads(export.read_text()))
    model = work / "tiny_qwen"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([python, "-c", f"from pathlib import Path; from streamo_data.train.vlm.tiny import build_tiny_qwen;"
                    f" build_tiny_qwen(Path({str(model)!r}))"], check=True, env=env)
    plugin = work / "our_dataset_plugin.py"
    plugin.write_text(PLUGIN.format(path=str(export), frames=str(work / "frames")))
    swift = str(Path(python).parent / "swift")
    command = [swift, "sft", "--model", str(model), "--model_type", "qwen2_5_vl", "--dataset", "streaming_video",
               "--train_type", "full", "--torch_dtype", "float32", "--max_steps", str(args.steps),
               "--per_device_train_batch_size", "1", "--loss_type", "stream", "--custom_register_path",
               str(fork / "swift" / "plugin" / "loss.py"), str(plugin), "--new_special_tokens",
               str(fork / "special_token_v1.txt"), "--logging_steps", "1", "--save_strategy", "no",
               "--output_dir", str(work / "output"), "--dataset_num_proc", "1", "--dataloader_num_workers", "0",
               "--max_length", "8192", "--report_to", "none"]
    done = subprocess.run(command, cwd=work, env={**env, "MAX_PIXELS": str(56 * 56), "MIN_PIXELS": str(56 * 56)},
                          capture_output=True, text=True)
    log = done.stdout + done.stderr
    (work / "swift_sft.log").write_text(log)
    losses = [float(x) for x in re.findall(r"'loss': '?([0-9.eE+-]+|nan|inf)'?", log)]
    kept = re.findall(r"train_dataset: Dataset\(\{[^}]*num_rows: (\d+)", log.replace("\n", " "))
    result = {"returncode": done.returncode, "exported_samples": exported,
              "kept_by_the_reference": int(kept[-1]) if kept else None, "losses": losses,
              "losses_finite": bool(losses) and all(math.isfinite(x) for x in losses),
              "log_tail": log[-3000:]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reference_trainer.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "log_tail"}, indent=2))
    if done.returncode:
        print(log[-3000:])


if __name__ == "__main__":
    main()
