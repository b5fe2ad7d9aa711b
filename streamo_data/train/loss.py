"""The streaming state loss: causal-LM cross-entropy with focal, frequency-weighted state tokens.

This is the loss of the reference implementation (maifoundations/Streamo, ``stream_focal_loss``),
restated (see shared/DESIGN.md, "The loss"): the mean over labelled tokens of the per-token
cross-entropy, where each state token's term (``</Silence>``, ``</Standby>``, ``</Response>``) is
multiplied by ``alpha_k * (1 - p_t) ** gamma``. ``p_t``, the probability of the true token, is
``exp(-cross_entropy)``: the reference takes it from a softmax over the whole vocabulary, which at a
150K vocabulary holds another ``tokens x vocab`` tensor for nothing; the value is the same.

``alpha`` is, as in the reference, computed from the batch: for each state present, (number of state
tokens in the batch / number that are that state) / (number of distinct states present); or
``"none"`` (no alpha); or a tensor of per-state weights (e.g. from a split's frequencies,
:func:`alpha_from_counts`), aligned with ``state_token_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

AlphaSpec = str | torch.Tensor


def alpha_from_counts(counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Per-state alpha from state frequencies (of a split, say), by the reference's formula: states
    that never occur get 0 weight (they have no terms to weigh)."""
    counts = torch.as_tensor(counts, dtype=torch.float32)
    present = counts > 0
    alpha = torch.zeros_like(counts)
    alpha[present] = (counts.sum() / counts[present]) / present.sum()
    return alpha


def _focal_weights(targets: torch.Tensor, ce: torch.Tensor, state_ids: torch.Tensor, gamma: float,
                   alpha: AlphaSpec) -> torch.Tensor:
    """Weight per labelled token: 1, or alpha_k * (1 - p_t)^gamma for state tokens."""
    matches = targets.unsqueeze(-1) == state_ids  # [tokens, states]
    is_state = matches.any(-1)
    weights = torch.ones_like(ce, dtype=torch.float32)
    if not is_state.any():
        return weights
    focal = (1.0 - torch.exp(-ce.float())).pow(gamma)
    if isinstance(alpha, torch.Tensor):
        per_state = alpha.to(ce.device, torch.float32)
    elif alpha == "batch":
        counts = matches.sum(0).float()
        present = counts > 0
        per_state = torch.zeros_like(counts)
        per_state[present] = (counts.sum() / counts[present]) / present.sum()
    elif alpha == "none":
        per_state = torch.ones(state_ids.numel(), device=ce.device)
    else:
        raise ValueError(f"alpha must be 'batch', 'none' or a tensor, not {alpha!r}")
    token_alpha = (matches.float() * per_state).sum(-1)
    return torch.where(is_state, token_alpha * focal, weights)


def stream_focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    state_token_ids: Sequence[int] | torch.Tensor,
    gamma: float = 2.0,
    alpha: AlphaSpec = "batch",
    ignore_index: int = -100,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss for a causal LM: ``logits [batch, seq, vocab]``, ``labels [batch, seq]``, shifted here
    as a causal LM does (position t predicts label t+1). ``num_items_in_batch`` overrides the divisor
    (the HF Trainer passes it under gradient accumulation)."""
    # Shift the labels, not the logits: position t predicts label t+1, and the last position predicts
    # nothing. Cross-entropy then reads the logits in place (a view), where slicing and masking them
    # first would copy a [tokens, vocab] tensor.
    targets_all = F.pad(labels[..., 1:].to(logits.device), (0, 1), value=ignore_index).reshape(-1)
    ce_all = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets_all, ignore_index=ignore_index,
                             reduction="none")
    mask = targets_all != ignore_index
    targets, ce = targets_all[mask], ce_all[mask]
    state_ids = torch.as_tensor(state_token_ids, device=logits.device).reshape(-1)
    weights = _focal_weights(targets, ce, state_ids, gamma, alpha)
    divisor = mask.sum() if num_items_in_batch is None else num_items_in_batch
    return (weights * ce).sum() / divisor


def frame_focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0, alpha: AlphaSpec = "batch",
    ignore_index: int = -100,
) -> torch.Tensor:
    """The same loss for a per-frame classifier: ``logits [batch, frames, 3]`` over the states
    (silence, standby, response), ``labels [batch, frames]``; every labelled frame is a state token,
    and nothing is shifted (frame t's label is frame t's state)."""
    mask = labels != ignore_index
    targets = labels[mask]
    ce = F.cross_entropy(logits[mask], targets, reduction="none")
    weights = _focal_weights(targets, ce, torch.arange(logits.shape[-1], device=logits.device), gamma, alpha)
    return (weights * ce).sum() / mask.sum().clamp(min=1)
