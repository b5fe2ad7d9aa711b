"""The baseline: a small causal transformer over frames that decides, frame by frame, whether to stay
silent, stand by or respond. A baseline for the *timing* of answers, not a Streamo model.

Each frame token is its projected visual features plus a position embedding, plus the instruction's
embedding from the frame where the question is shown onward (before it, a learned "no question"
vector). Attention is causal: frame t sees frames 0..t only, as in a live stream. The state head is a
linear layer per frame. What to say at a response frame is not generated: the evaluation retrieves
the task's most common training answer template and fills in the predicted span (see evaluate.py),
because writing captions needs a language model, which a CPU baseline trained from scratch on a few
hundred samples cannot be; what this baseline measures is when to speak.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    feature_dim: int
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    text_buckets: int = 4096
    max_frames: int = 512


class StreamingBaseline(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.frame_proj = nn.Sequential(nn.LayerNorm(config.feature_dim), nn.Linear(config.feature_dim, config.d_model))
        self.position = nn.Embedding(config.max_frames, config.d_model)
        self.text = nn.EmbeddingBag(config.text_buckets, config.d_model, mode="mean", padding_idx=0)
        self.no_question = nn.Parameter(torch.zeros(config.d_model))
        layer = nn.TransformerEncoderLayer(config.d_model, config.heads, 4 * config.d_model, config.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.state_head = nn.Linear(config.d_model, 3)

    def forward(self, features: torch.Tensor, text: torch.Tensor, offsets: torch.Tensor,
                question_frame: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, frames, 3]`` over (silence, standby, response)."""
        batch, frames, _ = features.shape
        steps = torch.arange(frames, device=features.device)
        asked = steps[None, :] >= question_frame[:, None]  # [batch, frames]
        instruction = self.text(text, offsets)[:, None, :]
        context = torch.where(asked[..., None], instruction, self.no_question)
        tokens = self.frame_proj(features) + self.position(steps)[None] + context
        causal = nn.Transformer.generate_square_subsequent_mask(frames, device=features.device)
        hidden = self.encoder(tokens, mask=causal, is_causal=True)
        return self.state_head(self.norm(hidden))
