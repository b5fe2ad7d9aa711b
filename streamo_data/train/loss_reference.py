"""The reference definition of the loss, computed the direct way: a softmax over the vocabulary.

Kept as an executable statement of what :func:`streamo_data.train.loss.stream_focal_loss` must equal
(the tests compare the two, values and gradients), and as the baseline of the memory benchmark. It
follows the reference implementation's steps in our own words; do not train with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def softmax_stream_focal_loss(logits: torch.Tensor, labels: torch.Tensor, state_token_ids: Sequence[int],
                              gamma: float = 2.0, auto_alpha: bool = True, ignore_index: int = -100) -> torch.Tensor:
    shift_logits, shift_labels = logits[..., :-1, :], labels[..., 1:]
    mask = shift_labels != ignore_index
    flat_logits, targets = shift_logits[mask], shift_labels[mask]
    ce = F.cross_entropy(flat_logits, targets, reduction="none")
    is_state = torch.zeros_like(targets, dtype=torch.bool)
    for token in state_token_ids:
        is_state |= targets == token
    weights = torch.ones_like(ce, dtype=torch.float32)
    if is_state.any():
        probabilities = torch.softmax(flat_logits, dim=-1)  # the whole [tokens, vocab] tensor
        p_true = probabilities[torch.arange(targets.numel()), targets]
        focal = (1.0 - p_true) ** gamma
        if auto_alpha:
            present, counts = torch.unique(targets[is_state], return_counts=True)
            alphas = (counts.sum().float() / counts.float()) / len(present)
            token_alpha = torch.ones_like(weights)
            for token, alpha in zip(present.tolist(), alphas, strict=True):
                token_alpha[targets == token] = alpha
            weights[is_state] = token_alpha[is_state] * focal[is_state]
        else:
            weights[is_state] = focal[is_state]
    return (weights * ce).sum() / mask.sum()
