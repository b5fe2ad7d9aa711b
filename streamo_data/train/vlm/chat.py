"""One sample as a VLM sees it: the reference's conversation (system prompt; per frame a user turn with its
time tag, the question where one is asked, and the frame; an assistant turn with the state token and the
answer) in Qwen's chat layout, with labels on the assistant's tokens only.

The conversation is the one ``streamo export stream-format`` writes for the reference trainer
(:func:`streamo_data.formats.render.render_sample`): each ``<stream>`` placeholder becomes the frame's
vision tokens, as many as the image processor's grid makes (``t * h * w / merge**2``), so the text and the
pixels always agree on how many image tokens there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamo_data.train.vlm.tiny import IM_END, IM_START, IMAGE_PAD, VISION_END, VISION_START

STREAM = "<stream>"  # the reference's per-frame placeholder
IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE except on the assistant's tokens (its content and its <|im_end|>)
    frames: int  # <stream> placeholders filled


def encode_messages(messages: Sequence[dict[str, Any]], image_tokens: Sequence[int], tokenizer: Any) -> Encoded:
    """Tokens and labels of a stream-format conversation; ``image_tokens[i]`` is frame i's count."""
    ids: list[int] = []
    labels: list[int] = []

    def add(text: str, labelled: bool) -> None:
        tokens = tokenizer.encode(text, add_special_tokens=False) if text else []
        ids.extend(tokens)
        labels.extend(tokens if labelled else [IGNORE] * len(tokens))

    frame = 0
    for message in messages:
        add(f"{IM_START}{message['role']}\n", False)
        content = str(message["content"])
        if message["role"] == "assistant":
            add(content + IM_END, True)
        else:
            parts = content.split(STREAM)
            for index, part in enumerate(parts):
                add(part, False)
                if index < len(parts) - 1:
                    if frame >= len(image_tokens):
                        raise ValueError(f"the conversation has more frames than the {len(image_tokens)} given")
                    add(VISION_START + IMAGE_PAD * image_tokens[frame] + VISION_END, False)
                    frame += 1
            add(IM_END, False)
        add("\n", False)
    return Encoded(ids, labels, frame)
