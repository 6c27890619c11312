"""NumPy reference implementations of every optimlab update rule, straight from the papers' equations.

Pure optax-style functions, no torch (``import optimlab.reference`` never imports it):

    init, update, defaults = REFERENCES["rsgdm"]
    state = init(theta)
    theta, state = update(state, theta, g, **defaults)

``g`` is the raw gradient, given by the caller. State: a NamedTuple of float64 arrays and the step
counter ``t``. Names follow optimlab.create_optimizer's registry. Where torch.optim's convention
differs from the paper's, the update takes ``convention="paper" | "torch"`` (paper by default);
``TORCH_CONVENTION[name]`` holds the overrides that make the reference equal to torch's own
optimizer of that name, and ``CONVENTION_NOTES[name]`` says what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimlab.reference.adaptive import (
    adam_init,
    adam_update,
    adamw_update,
    amsgrad_init,
    amsgrad_update,
    nadam_init,
    nadam_update,
    radam_rho,
    radam_update,
)
from optimlab.reference.classical import (
    adadelta_init,
    adadelta_update,
    adagrad_init,
    adagrad_update,
    ema_init,
    ema_sequence,
    ema_update,
    gd_init,
    gd_update,
    momentum_init,
    nag_lookahead,
    nag_update,
    rmsprop_init,
    rmsprop_update,
    sgdm_update,
)
from optimlab.reference.papers import (
    WGD_MODES,
    rsgdm_init,
    rsgdm_update,
    tmsgd_init,
    tmsgd_update,
    wgd,
    wgd_filter,
    wgd_kernel,
)
from optimlab.reference.published import (
    centralize_filters,
    moment_init,
    nadam_published_update,
    wgd_adam_published_update,
    wgd_radam_published_update,
    wgd_sgd_published_update,
)

Init = Callable[[np.ndarray], Any]
Update = Callable[..., tuple[np.ndarray, Any]]

_BASES: dict[str, tuple[Init, Update, dict[str, Any]]] = {
    "sgd": (gd_init, gd_update, {"lr": 0.01}),
    "gd-ema": (ema_init, ema_update, {"lr": 0.01, "beta": 0.9, "bias_correction": True}),
    "sgdm-ema": (ema_init, ema_update, {"lr": 0.01, "beta": 0.9, "bias_correction": False}),
    "sgdm": (momentum_init, sgdm_update, {"lr": 0.01, "momentum": 0.9}),
    "nag": (momentum_init, nag_update, {"lr": 0.01, "momentum": 0.9}),
    "adagrad": (adagrad_init, adagrad_update, {"lr": 0.01, "eps": 1e-10}),
    "adadelta": (adadelta_init, adadelta_update, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    "rmsprop": (rmsprop_init, rmsprop_update, {"lr": 0.01, "rho": 0.9, "eps": 1e-8}),
    "adam": (adam_init, adam_update, {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    "adamw": (adam_init, adamw_update, {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}),
    "amsgrad": (amsgrad_init, amsgrad_update, {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    "nadam": (nadam_init, nadam_update, {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    "radam": (adam_init, radam_update, {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    "rsgdm": (rsgdm_init, rsgdm_update, {"lr": 0.01, "beta": 0.9}),
    "tmsgd": (tmsgd_init, tmsgd_update, {"lr": 0.1, "momentum": 0.0}),
    "tmsgdm": (tmsgd_init, tmsgd_update, {"lr": 0.1, "momentum": 0.9}),
}

# name -> (init, update, defaults). wgd-<base> for every base, as in optimlab.optim's registry.
REFERENCES: dict[str, tuple[Init, Update, dict[str, Any]]] = {
    **_BASES,
    **{
        f"wgd-{name}": (
            *wgd(init, update),
            {**defaults, "wgd_mode": "filter", "wgd_include_linear": False, "wgd_min_dim": 3, "wgd_target": "gradient"},
        )
        for name, (init, update, defaults) in _BASES.items()
    },
    # the WGD authors' published classes, from reading their code (reference/published.py)
    "wgd-sgdm-published": (moment_init, wgd_sgd_published_update, {"lr": 0.01, "momentum": 0.9, "min_dim": 4}),
    "wgd-adam-published": (
        moment_init,
        wgd_adam_published_update,
        {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "min_dim": 4, "centre": "gradient"},
    ),
    "wgd-adam2-published": (
        moment_init,
        wgd_adam_published_update,
        {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "min_dim": 4, "centre": "update"},
    ),
    "wgd-radam-published": (
        moment_init,
        wgd_radam_published_update,
        {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "min_dim": 4, "target": "update"},
    ),
    "wgd-nadam-published": (
        moment_init,
        nadam_published_update,
        {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "momentum_decay": 0.004, "v_correction": "beta2^t"},
    ),
}

# Overrides that turn the paper's rule into torch.optim's optimizer of the same registry name.
TORCH_CONVENTION: dict[str, dict[str, Any]] = {
    "sgd": {},
    "sgdm": {"convention": "torch"},
    "nag": {"convention": "torch"},
    "adagrad": {"convention": "torch"},
    "adadelta": {},
    "rmsprop": {"convention": "torch"},
    "adam": {},
    "adamw": {},
    "amsgrad": {"convention": "torch"},
    "nadam": {"convention": "torch"},
    "radam": {"convention": "torch"},
}

# What differs between the paper's equation and torch.optim (also in each update's docstring).
CONVENTION_NOTES: dict[str, str] = {
    "sgd": "none.",
    "sgdm": "paper 003 eq. 4 keeps lr inside the velocity (v = m·v + lr·g, x −= v); torch keeps it "
    "outside (buf = μ·buf + g, θ −= lr·buf; buf_1 = g undamped). Equal at constant lr, "
    "dampening 0; differ when lr changes between steps or with dampening.",
    "nag": "paper 003 eq. 5 evaluates the gradient at the look-ahead x − m·v; torch (nesterov=True) "
    "uses g at θ and steps θ −= lr·(g + μ·buf). Same method at constant lr: torch's θ is the "
    "paper's look-ahead point.",
    "adagrad": "paper: lr/sqrt(G + ε); torch: lr/(sqrt(G) + ε), plus torch-only lr_decay and "
    "initial_accumulator_value (0 here).",
    "adadelta": "paper has no learning rate; torch multiplies the step by lr (default 1.0, = paper) "
    "and accumulates the unscaled update. ε inside both roots in both.",
    "rmsprop": "paper: lr/sqrt(s + ε); torch: lr/(sqrt(s) + ε). torch names ρ `alpha` (default 0.99; "
    "paper 003: 0.9). torch's momentum/centered options not modelled.",
    "adam": "none (torch computes lr/(1−β1^t)·m/(sqrt(v)/sqrt(1−β2^t) + ε), the same). Paper 002's "
    "listing has no bias correction and ε inside the root.",
    "adamw": "none (torch.optim.AdamW: θ·(1 − lr·λ), then Adam on the raw gradient).",
    "amsgrad": "paper (Reddi): lr·m/(sqrt(max v) + ε), no bias correction; torch bias-corrects m and "
    "divides the max of the raw v by (1 − β2^t) of the current step.",
    "nadam": "paper 003 eq. 10: constant β1; torch: momentum-decay schedule μ_t = β1(1 − 0.5·0.96^(tψ)), "
    "ψ = 0.004, with the running product of μ (kept in float32 unless torch's default dtype "
    "is float64).",
    "radam": "paper 003 Algorithm 1: rectify when ρ_t > 4, l = sqrt((1 − β2^t)/v) without ε; torch: "
    "ρ_t > 5 and l = sqrt(1 − β2^t)/(sqrt(v) + ε). With β2 = 0.999 they differ at step 5.",
}


def reference(name: str) -> tuple[Init, Update, dict[str, Any]]:
    """REFERENCES[name], with a ValueError listing the valid names for an unknown one."""
    if name not in REFERENCES:
        raise ValueError(f"Unknown reference {name!r}. Valid names: {', '.join(REFERENCES)}")
    return REFERENCES[name]


def trajectory(name: str, theta0: np.ndarray, grads: Sequence[np.ndarray], **hparams: Any) -> np.ndarray:
    """Iterates θ_1..θ_T of rule `name` fed the given gradients (defaults overridden by hparams).

    Returns an array of shape (T, *theta0.shape).
    """
    init, update, defaults = reference(name)
    theta = np.array(theta0, dtype=np.float64, copy=True)
    state = init(theta)
    out = []
    for g in grads:
        theta, state = update(state, theta, g, **{**defaults, **hparams})
        out.append(theta)
    return np.array(out)


__all__ = [
    "CONVENTION_NOTES",
    "REFERENCES",
    "centralize_filters",
    "moment_init",
    "nadam_published_update",
    "wgd_adam_published_update",
    "wgd_radam_published_update",
    "wgd_sgd_published_update",
    "TORCH_CONVENTION",
    "WGD_MODES",
    "adadelta_init",
    "adadelta_update",
    "adagrad_init",
    "adagrad_update",
    "adam_init",
    "adam_update",
    "adamw_update",
    "amsgrad_init",
    "amsgrad_update",
    "ema_init",
    "ema_sequence",
    "ema_update",
    "gd_init",
    "gd_update",
    "momentum_init",
    "nadam_init",
    "nadam_update",
    "nag_lookahead",
    "nag_update",
    "radam_rho",
    "radam_update",
    "reference",
    "rmsprop_init",
    "rmsprop_update",
    "rsgdm_init",
    "rsgdm_update",
    "sgdm_update",
    "tmsgd_init",
    "tmsgd_update",
    "trajectory",
    "wgd",
    "wgd_filter",
    "wgd_kernel",
]
