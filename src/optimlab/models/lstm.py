"""LSTM text classifier: token embedding -> LSTM -> linear on the last real token's hidden state.

Inputs are int64 token ids [B, L], right-padded with 0 (<pad>); the LSTM runs left to right, so its
output at a document's last token is untouched by the padding after it (no packing needed, and the
same on every device). `width` scales the embedding and hidden sizes (each at least 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LSTMClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("num_classes", num_classes), ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        e, h = max(1, round(embed_dim * width)), max(1, round(hidden_size * width))
        self.embedding = nn.Embedding(vocab_size, e, padding_idx=0)
        self.lstm = nn.LSTM(e, h, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(h, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        lengths = (x != 0).sum(dim=1).clamp_min(1)  # an empty document reads position 0
        out, _ = self.lstm(self.embedding(x))  # [B, L, H]
        last = out[torch.arange(x.shape[0], device=x.device), lengths - 1]
        return self.fc(last)


__all__ = ["LSTMClassifier"]
