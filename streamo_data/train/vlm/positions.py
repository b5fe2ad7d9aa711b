"""Qwen-VL's M-RoPE positions (temporal, height, width) for a token sequence, computed by the model's own
``get_rope_index`` and passed to it explicitly.

Why explicit: transformers 5 computes the 3-D positions only when it is given ``mm_token_type_ids`` (which
its processor makes, and which our own tokenisation does not), and otherwise silently falls back to 1-D
positions over the vision tokens, which is not how Qwen2.5-VL was pre-trained nor what the reference
trainer (transformers 4, which finds the image tokens by id) does. Older releases take no token types.
Passing the positions ourselves makes training and cached streaming inference see the same positions on
every version.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def base_model(model: Any) -> Any:
    """The Qwen-VL model under a task head and any ``peft`` wrapper (the one owning ``get_rope_index``)."""
    while not hasattr(model, "get_rope_index"):
        inner = getattr(model, "model", None) or getattr(model, "base_model", None)
        if inner is None or inner is model:
            raise TypeError(f"{type(model).__name__} has no M-RoPE index (not a Qwen-VL model)")
        model = inner
    return model


def rope_positions(model: Any, input_ids: torch.Tensor, image_grid_thw: torch.Tensor | None,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[3, batch, length]`` positions of ``input_ids`` (right-padded where ``attention_mask`` is 0)."""
    owner = base_model(model)
    image_id = owner.config.image_token_id
    options: dict[str, Any] = {"image_grid_thw": image_grid_thw, "attention_mask": attention_mask}
    if "mm_token_type_ids" in inspect.signature(owner.get_rope_index).parameters:
        options["mm_token_type_ids"] = (input_ids == image_id).int()
    positions, _ = owner.get_rope_index(input_ids, **options)
    return positions


def chunk_positions(model: Any, chunk_ids: list[int], image_grid_thw: torch.Tensor | None,
                    start: int) -> torch.Tensor:
    """Positions of a chunk appended to a sequence whose next free position is ``start``: M-RoPE numbers
    each text run and image block from the running maximum plus one, so a chunk's positions are its own,
    shifted. ``image_grid_thw`` holds the chunk's images only."""
    ids = torch.tensor([chunk_ids])
    if image_grid_thw is None or len(image_grid_thw) == 0:
        return torch.arange(start, start + len(chunk_ids)).view(1, 1, -1).expand(3, 1, -1)
    return rope_positions(model, ids, image_grid_thw) + start
