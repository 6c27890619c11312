"""WGD leaves a base's own weight decay alone unless it is the coupled L2 it folds, in both
directions of `maximize`, over every registered base; no_decay_groups stops MARS's 1-D decay too."""

from __future__ import annotations

from typing import Any, cast

import pytest
import torch

from optimlab.optim import create_optimizer, no_decay_groups, optimizer_info, set_train_mode
from optimlab.optim.registry import _all_bases
from optimlab.optim.wgd_decay import folds_coupled_decay

# every registered base, plus a user's optimizer by reference (its decay, decoupled, is its own)
BASES = [*sorted(_all_bases()), "plugin_fixtures:HeavyBallSign"]
STEPS = 3


def _run(name: str, maximize: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Three steps on a zero gradient with weight decay: (conv weight, 1-D bias) afterwards."""
    torch.manual_seed(0)
    conv = torch.nn.Parameter(torch.randn(4, 3, 3, 3) + 1.0)
    bias = torch.nn.Parameter(torch.randn(4) + 2.0)
    extra = {} if maximize is None else {"maximize": maximize}
    opt = create_optimizer(name, [conv, bias], weight_decay=0.1, **extra)
    set_train_mode(opt, True)
    for _ in range(STEPS):
        conv.grad, bias.grad = torch.zeros_like(conv), torch.zeros_like(bias)
        opt.step()
    set_train_mode(opt, False)
    return conv.detach(), bias.detach()


def _maximize_values(name: str) -> list[bool | None]:
    return [False, True] if "maximize" in optimizer_info(name).hparams else [None]


CASES = [pytest.param(n, m, id=f"{n}-maximize={m}") for n in BASES for m in _maximize_values(n)]


@pytest.mark.parametrize(("name", "maximize"), CASES)
def test_wgd_keeps_the_bases_own_weight_decay(name: str, maximize: bool | None) -> None:
    """WGD never centres a 1-D tensor, so on a bias wgd-<base> must step exactly as <base>: whether it
    folds the decay (coupled L2) or leaves it to the base, the decay is the base's own, sign included."""
    _, plain = _run(name, maximize)
    _, wrapped = _run(f"wgd-{name}", maximize)
    torch.testing.assert_close(wrapped, plain, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "maximize"), CASES)
def test_decay_never_grows_the_weights_on_a_zero_gradient(name: str, maximize: bool | None) -> None:
    torch.manual_seed(0)  # the starting point _run draws
    start_conv = torch.randn(4, 3, 3, 3) + 1.0
    start_bias = torch.randn(4) + 2.0
    conv, bias = _run(f"wgd-{name}", maximize)
    assert bias.norm() <= start_bias.norm() + 1e-6, f"wgd-{name} grew a bias on a zero gradient"
    assert conv.norm() <= start_conv.norm() + 1e-6, f"wgd-{name} grew a conv weight on a zero gradient"


def test_the_fold_table_folds_coupled_l2_and_nothing_else() -> None:
    p = [torch.nn.Parameter(torch.ones(2))]

    def folds(name: str, **hp: object) -> bool:
        opt = create_optimizer(name, p, **hp)
        return folds_coupled_decay(opt, opt.param_groups[0])

    assert folds("sgdm") and folds("adam") and folds("rsgdm") and folds("qhm") and folds("apollo")
    assert not folds("adamw") and not folds("adam", decoupled_weight_decay=True)
    assert not folds("adan") and not folds("adan", weight_decouple=True)  # proximal or decoupled
    assert not folds("schedulefree-adamw") and not folds("mars") and not folds("lion")
    assert folds("lion", weight_decouple=False) and not folds("qhm", weight_decouple=True)
    assert not folds("apollo", weight_decay_type="decoupled") and not folds("apollo", weight_decay_type="stable")


def test_no_decay_groups_stop_mars_own_decay_of_1d_tensors() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    biases = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() == 1}
    opt = create_optimizer("mars", no_decay_groups(model, 0.1))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        if p.dim() == 1:
            torch.testing.assert_close(p.detach(), biases[n], rtol=0, atol=0, msg=f"MARS decayed {n}")


@pytest.mark.parametrize("name", [*BASES, "wgd-adam", "lookahead-sgdm", "wgd-qhm"])
def test_a_negative_weight_decay_names_the_hyperparameter_without_params(name: str) -> None:
    with pytest.raises(ValueError, match="weight_decay"):
        create_optimizer(name, cast(Any, None), weight_decay=-1)  # None: the params are never read
