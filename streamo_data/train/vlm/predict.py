"""Streaming inference with a fine-tuned VLM: frame by frame, the model answers each frame's user turn with
one of the three state tokens (the most likely of the three: every turn of the training data begins with
one), and after ``</Response>`` with the answer, greedily, until ``<|im_end|>``. A silent or standby turn
ends at its state token, so a frame costs one forward pass unless the model speaks.

The conversation grows as the reference's does: every frame adds a user turn (time tag, the question on
the frame it is asked, the frame) and the model's own reply, which the next frame sees. Each turn is
generated from the whole conversation so far; a key-value cache carried across turns (what a deployed
assistant would keep) is not used yet, so a turn costs the prefix again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamo_data.formats.render import REFERENCE_SYSTEM_PROMPT, STATE_TOKENS
from streamo_data.train.vlm.chat import STREAM, encode_messages
from streamo_data.train.vlm.loop import Loaded

STATES = list(STATE_TOKENS)  # in the order of Loaded.state_ids


@dataclass
class FrameReply:
    frame: int
    state: str  # silence | standby | response
    text: str  # what the model said after the state token


def time_tag(frame: int, fps: float) -> str:
    start, end = frame / fps, (frame + 1) / fps
    return f"<{start:g}s-{end:g}s>"


def user_turns(frames: int, fps: float, question: str | None) -> list[str]:
    """The user's turn on each frame, as the reference renders them: the question (asked on frame 0), the
    frame's time tag, the frame."""
    return [(f"{question}\n" if question and k == 0 else "") + f"{time_tag(k, fps)}\n{STREAM}" for k in range(frames)]


def stream_replies(loaded: Loaded, frames: np.ndarray, turns: list[str], max_new_tokens: int = 32) -> list[FrameReply]:
    """One reply per frame to ``turns[k]`` (each holding one ``<stream>``), each turn seeing the model's own
    earlier replies."""
    tokenizer, model = loaded.tokenizer, loaded.model
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    merge = int(getattr(loaded.processor, "merge_size", 2))
    messages: list[dict[str, str]] = [{"role": "system", "content": REFERENCE_SYSTEM_PROMPT}]
    replies: list[FrameReply] = []
    model.eval()
    for frame in range(min(len(frames), len(turns))):
        messages.append({"role": "user", "content": turns[frame]})
        pixels = loaded.processor(images=list(frames[:frame + 1]), return_tensors="pt")
        tokens = [int(n) for n in pixels["image_grid_thw"].prod(-1) // merge**2]
        encoded = encode_messages(messages, tokens, tokenizer)
        prompt = encoded.input_ids + tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
        inputs = {"pixel_values": pixels["pixel_values"], "image_grid_thw": pixels["image_grid_thw"]}
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt]), **inputs).logits[0, -1]
            state_id = loaded.state_ids[int(torch.argmax(logits[loaded.state_ids]))]
            state = STATES[loaded.state_ids.index(state_id)]
            answer: list[int] = []
            if state == "response":
                output = model.generate(input_ids=torch.tensor([prompt + [state_id]]), **inputs,
                                        max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end_id,
                                        pad_token_id=tokenizer.pad_token_id)
                answer = [t for t in output[0, len(prompt) + 1:].tolist() if t != end_id]
        text = tokenizer.decode(answer, skip_special_tokens=False).strip()
        replies.append(FrameReply(frame, state, text))
        messages.append({"role": "assistant", "content": STATE_TOKENS[state] + (f" {text}" if text else "")})
    return replies


def predict_video(run_model: Path, video: Path, fps: float, side: int, question: str | None) -> list[FrameReply]:
    """A model folder, or a run of ``streamo train --model`` (its ``model/``), over one video's sampled frames."""
    from streamo_data.train.vlm.frames import decode_frames
    from streamo_data.train.vlm.loop import load_model
    from streamo_data.video.backends import available_backends

    loaded = load_model(run_model / "model" if (run_model / "model" / "config.json").exists() else run_model)
    frames = decode_frames(video, fps, side, available_backends())
    return stream_replies(loaded, frames, user_turns(len(frames), fps, question))
