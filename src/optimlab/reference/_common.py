"""Plumbing shared by the NumPy references: gradient preparation and hyperparameter checks.

No torch here (``optimlab.reference`` must import without it).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Convention = Literal["paper", "torch"]
CONVENTIONS = ("paper", "torch")


def effective_gradient(g: np.ndarray, theta: np.ndarray, weight_decay: float, maximize: bool) -> np.ndarray:
    """g ← ±g + λθ: the maximize sign flip first, then coupled L2 weight decay (torch's order).

    Maximizing f is minimizing −f, so the gradient is negated; the L2 term λθ belongs to the
    objective being minimized and is added after the flip, exactly as every torch.optim rule does.
    """
    g = np.asarray(g, dtype=np.float64)
    if g.shape != np.shape(theta):
        raise ValueError(f"gradient shape {g.shape} does not match theta shape {np.shape(theta)}")
    if maximize:
        g = -g
    if weight_decay:
        g = g + weight_decay * theta
    return g


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"Invalid convention={convention!r}: must be one of {CONVENTIONS}")


def check_unit(name: str, value: float) -> None:
    """A decay rate in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}={value!r}: must be in [0, 1)")


def check_nonnegative(name: str, value: float) -> None:
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"Invalid {name}={value!r}: must be >= 0")
