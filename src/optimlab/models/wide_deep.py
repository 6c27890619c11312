"""Wide & Deep (Cheng et al., 2016) over hashed categorical ids: one logit per sample.

    logit = wide + deep + b
    wide  = sum over all F + C columns of w[id]                  (a linear model over one-hot fields and crosses)
    deep  = MLP(concat of the F fields' embeddings)              (ReLU layers, then one output)

Inputs are int ids [B, F + C] in [0, buckets) (optimlab.data.ctr): the first F columns are the fields
(embedded for the deep part), the last C the crossed groups (wide part only). `width` scales the
embedding size and the hidden layers (each at least 1). References: Cheng et al., "Wide & Deep
Learning for Recommender Systems", DLRS 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class WideDeep(nn.Module):
    def __init__(
        self,
        buckets: int,
        n_fields: int,
        embed_dim: int = 8,
        hidden: Sequence[int] = (256, 128),
        width: float = 1.0,
    ) -> None:
        super().__init__()
        for name, v in (("buckets", buckets), ("n_fields", n_fields)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.n_fields = n_fields
        self.wide = nn.Embedding(buckets, 1)
        nn.init.zeros_(self.wide.weight)  # the wide part starts as the constant model
        self.bias = nn.Parameter(torch.zeros(1))
        e = max(1, round(embed_dim * width))
        self.embedding = nn.Embedding(buckets, e)
        nn.init.normal_(self.embedding.weight, std=0.01)
        layers: list[nn.Module] = []
        size = n_fields * e
        for h in hidden:
            h = max(1, round(h * width))
            layers += [nn.Linear(size, h), nn.ReLU()]
            size = h
        layers.append(nn.Linear(size, 1))
        self.deep = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        wide = self.wide(x).sum(dim=(1, 2))
        deep = self.deep(self.embedding(x[:, : self.n_fields]).flatten(1)).squeeze(1)
        return wide + deep + self.bias


__all__ = ["WideDeep"]
