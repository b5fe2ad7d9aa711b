"""Streaming inference with a fine-tuned VLM, as a deployed assistant runs: frame by frame, over one key-value
cache that holds the whole conversation so far, greedy.

Each frame appends its user turn (time tag, the question on the frame it is asked, the frame's vision tokens)
and the assistant prompt to the cache; the reply opens with the most likely of the three state tokens (every
assistant turn of the training data does). ``<Silence>`` and ``<Standby>`` end the turn there; after
``<Response>`` the answer is decoded token by token until ``<|im_end|>``. The model's own reply stays in the
cache, so the next frame sees it, exactly as the reference's conversation layout has it. A silent frame costs
one forward pass over its new tokens only: the state token and the turn's end are sent with the next frame's
turn. The positions are Qwen-VL's M-RoPE, numbered per chunk from the running maximum, which is what one
forward pass over the whole conversation would give (tested).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamo_data.core.align import State, time_tag
from streamo_data.formats.render import REFERENCE_SYSTEM_PROMPT, STATE_TOKENS
from streamo_data.train.vlm.chat import STREAM, encode_messages
from streamo_data.train.vlm.loop import Loaded
from streamo_data.train.vlm.positions import chunk_positions
from streamo_data.train.vlm.tiny import IM_END, IM_START

STATES = list(STATE_TOKENS)  # in the order of Loaded.state_ids


@dataclass
class FrameReply:
    frame: int
    state: str  # silence | standby | response
    text: str  # what the model said after the state token


@dataclass
class CachedConversation:
    """The conversation as the model's key-value cache; ``ids`` and ``grids`` keep what was fed, so a test
    can run the same tokens through one uncached forward pass."""

    loaded: Loaded
    cache: Any = None
    next_position: int = 0
    ids: list[int] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        from transformers import DynamicCache

        self.cache = DynamicCache()
        parameters = inspect.signature(self.loaded.model.forward).parameters
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"  # renamed in transformers 5

    def feed(self, ids: list[int], pixels: torch.Tensor | None = None,
             grid: torch.Tensor | None = None) -> torch.Tensor:
        """Append ``ids`` (with the pixels of the images they hold); the next-token logits after them."""
        positions = chunk_positions(self.loaded.model, ids, grid, self.next_position)
        with torch.no_grad():
            output = self.loaded.model(input_ids=torch.tensor([ids]), position_ids=positions, pixel_values=pixels,
                                       image_grid_thw=grid, use_cache=True, **{self.cache_argument: self.cache})
        self.next_position = int(positions.max()) + 1
        self.ids.extend(ids)
        if grid is not None:
            self.grids.append(grid)
        return output.logits[0, -1].float()


def user_turns(frames: int, fps: float, question: str | None) -> list[str]:
    """The user's turn on each frame, as the reference renders them: the question (asked on frame 0), the
    frame's time tag, the frame."""
    return [(f"{question}\n" if question and k == 0 else "") + f"{time_tag(k, fps)}\n{STREAM}" for k in range(frames)]


def iter_replies(loaded: Loaded, frames: np.ndarray, turns: list[str], max_new_tokens: int = 32,
                 conversation: CachedConversation | None = None, silent_until: int = 0) -> Iterator[FrameReply]:
    """One reply per frame to ``turns[k]`` (each holding one ``<stream>``), each turn seeing the model's own
    earlier replies through the cache; a generator, so a caller can stop the stream (at a first response).
    Frames before ``silent_until`` are answered ``</Silence>`` without asking the model (a benchmark's
    fast-forward to its question: the frames stay in the context, as the reference's OVO-Bench script has it)."""
    tokenizer = loaded.tokenizer
    end_id = tokenizer.convert_tokens_to_ids(IM_END)
    turn_end = [end_id, *tokenizer.encode("\n", add_special_tokens=False)]
    assistant = tokenizer.encode(f"{IM_START}assistant\n", add_special_tokens=False)
    talk = conversation or CachedConversation(loaded)
    loaded.model.eval()
    pending = encode_messages([{"role": "system", "content": REFERENCE_SYSTEM_PROMPT}], [], tokenizer).input_ids
    for frame in range(min(len(frames), len(turns))):
        pixels, tokens = image_inputs(loaded, frames[frame:frame + 1])
        user = encode_messages([{"role": "user", "content": turns[frame]}], tokens, tokenizer).input_ids
        if frame < silent_until:
            talk.feed(pending + user + assistant, pixels["pixel_values"], pixels["image_grid_thw"])
            pending = [loaded.state_ids[STATES.index(State.SILENCE)], *turn_end]
            yield FrameReply(frame, "silence", "")
            continue
        logits = talk.feed(pending + user + assistant, pixels["pixel_values"], pixels["image_grid_thw"])
        state_id = loaded.state_ids[int(torch.argmax(logits[loaded.state_ids]))]
        state = STATES[loaded.state_ids.index(state_id)]
        answer: list[int] = []
        pending = [state_id]
        if state == "response":
            answer = greedy(talk, talk.feed(pending), end_id, max_new_tokens)
            pending = []
        pending += turn_end
        yield FrameReply(frame, state, tokenizer.decode(answer, skip_special_tokens=False).strip())


def stream_replies(loaded: Loaded, frames: np.ndarray, turns: list[str], max_new_tokens: int = 32,
                   conversation: CachedConversation | None = None) -> list[FrameReply]:
    return list(iter_replies(loaded, frames, turns, max_new_tokens, conversation))


def image_inputs(loaded: Loaded, frames: np.ndarray) -> tuple[Any, list[int]]:
    """The image processor's pixels for ``frames`` and each frame's count of image tokens."""
    pixels = loaded.processor(images=list(frames), return_tensors="pt")
    merge = int(getattr(loaded.processor, "merge_size", 2))
    return pixels, [int(n) for n in pixels["image_grid_thw"].prod(-1) // merge**2]


def greedy(talk: CachedConversation, logits: torch.Tensor, end_id: int, max_new_tokens: int) -> list[int]:
    """Tokens decoded greedily from ``logits`` on, each fed back, until ``end_id`` (not kept) or the budget."""
    tokens: list[int] = []
    while len(tokens) < max_new_tokens and (token := int(torch.argmax(logits))) != end_id:
        tokens.append(token)
        logits = talk.feed([token])
    return tokens


def answer_over_frames(loaded: Loaded, frames: np.ndarray, prompt: str, system: str,
                       max_new_tokens: int = 128) -> str:
    """An offline answer: one user turn holding every frame then the prompt, answered greedily (how an
    offline benchmark protocol asks a model about a clip)."""
    tokenizer = loaded.tokenizer
    pixels, tokens = image_inputs(loaded, frames)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": STREAM * len(frames) + prompt}]
    ids = encode_messages(messages, tokens, tokenizer).input_ids
    ids += tokenizer.encode(f"{IM_START}assistant\n", add_special_tokens=False)
    talk = CachedConversation(loaded)
    loaded.model.eval()
    logits = talk.feed(ids, pixels["pixel_values"], pixels["image_grid_thw"])
    answer = greedy(talk, logits, tokenizer.convert_tokens_to_ids(IM_END), max_new_tokens)
    return str(tokenizer.decode(answer, skip_special_tokens=False)).strip()


def predict_video(run_model: Path, video: Path, fps: float, side: int, question: str | None) -> list[FrameReply]:
    """A model folder, or a run of ``streamo train --model`` (its ``model/``), over one video's sampled frames."""
    from streamo_data.train.vlm.frames import decode_frames
    from streamo_data.train.vlm.loop import load_model, model_dir_of
    from streamo_data.video.backends import available_backends

    loaded = load_model(model_dir_of(run_model))
    frames = decode_frames(video, fps, side, available_backends())
    return stream_replies(loaded, frames, user_turns(len(frames), fps, question))
