"""The focal state loss for a real VLM trained with Hugging Face transformers.

    from streamo_data.train.hf import make_compute_loss_func, state_token_ids
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      compute_loss_func=make_compute_loss_func(state_token_ids(tokenizer)))

The loss is computed from the causal LM's logits at every labelled position, exactly as
:func:`streamo_data.train.loss.stream_focal_loss` (and the reference implementation) define it; the
state tokens are ``</Silence>``, ``</Standby>`` and ``</Response>``, which the tokenizer must know as
single tokens (add them with ``tokenizer.add_tokens`` and resize the embeddings first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from streamo_data.formats.render import STATE_TOKENS
from streamo_data.train.loss import AlphaSpec, stream_focal_loss


def state_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the three state tokens; each must encode to exactly one token."""
    ids = []
    for token in STATE_TOKENS.values():
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"{token!r} is {len(encoded)} tokens for this tokenizer: add it with "
                             "tokenizer.add_tokens([...]) and resize the model's embeddings")
        ids.append(encoded[0])
    return ids


def make_compute_loss_func(state_ids: Sequence[int], gamma: float = 2.0, alpha: AlphaSpec = "batch") -> Callable[
        ..., torch.Tensor]:
    """A ``compute_loss_func`` for ``transformers.Trainer``: ``(outputs, labels, num_items_in_batch)``."""

    def compute_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        return stream_focal_loss(logits, labels, state_ids, gamma=gamma, alpha=alpha,
                                 num_items_in_batch=num_items_in_batch)

    return compute_loss
