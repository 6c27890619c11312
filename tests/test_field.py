"""The field's baselines (optimlab.optim.field): the right Apollo, RSGDM = QHM(ν = β) from step 2 on,
Lookahead over any name, Schedule-Free's train()/eval() driven by the harness, and every new entry in
`optimlab list`, compare and tune. (Descent, resume and the torch.optim contract: test_optimizers.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_optimizer as po
import torch

import optimlab.train.loop as loop_module
from optimlab.optim import RSGDM, TMSGD, WGD, create_optimizer, list_optimizers, optimizer_info, set_train_mode
from optimlab.optim.field import FIELD

NEW = [
    "adamw",
    "apollo",
    "adan",
    "mars",
    "qhm",
    "lion",
    "schedulefree-sgd",
    "schedulefree-adamw",
    "lookahead-adam",
    "lookahead-sgdm",
]


def _grads(steps: int, shapes: list[tuple[int, ...]], seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) + 0.2 * np.cos(k / 5) for s in shapes] for k in range(steps)]


def _run(opt: torch.optim.Optimizer, params: list[torch.Tensor], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    out = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(np.concatenate([p.detach().numpy().ravel() for p in params]))
    return out


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_rsgdm_is_qhm_with_nu_equal_beta_from_step_2(beta: float) -> None:
    """Algebra: RSGDM's n_t = (1−β)g_t + β·m̃_t with m̃_t = β·m̃_{t−1} + (1−β)g_t, m̃_1 = 0; QHM's step is
    ν·buf_t + (1−ν)·g_t with buf_t = β·buf_{t−1} + (1−β)g_t, buf_0 = 0. With ν = β the rules are the same
    map; only the first step differs (RSGDM leaves g_1 out of its buffer): started at RSGDM's θ_1 with a
    fresh buffer, QHM takes RSGDM's steps 2, 3, … exactly (250 steps, float64, coupled weight decay)."""
    shapes = [(4, 3, 3, 3), (7,)]
    grads = _grads(251, shapes)
    theta0 = [torch.randn(s, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) for s in shapes]
    rs = [t.clone().requires_grad_() for t in theta0]
    rs_path = _run(RSGDM(rs, lr=0.05, beta=beta, weight_decay=1e-3), rs, grads)
    qh = [torch.tensor(rs_path[0][:108].reshape(shapes[0])), torch.tensor(rs_path[0][108:])]
    qh = [t.requires_grad_() for t in qh]
    qh_path = _run(create_optimizer("qhm", qh, lr=0.05, momentum=beta, nu=beta, weight_decay=1e-3), qh, grads[1:])
    np.testing.assert_allclose(np.array(qh_path), np.array(rs_path[1:]), rtol=1e-11, atol=1e-13)

    # the first-step difference: QHM's buffer starts at (1−β)g_1, so its step 1 is (1−β²)g_1, i.e.
    # (1 + β) times RSGDM's (1−β)g_1, and it keeps β^(t−1)(1−β)g_1 in its buffer afterwards.
    q0 = [t.clone().requires_grad_() for t in theta0]
    q_path = _run(create_optimizer("qhm", q0, lr=0.05, momentum=beta, nu=beta), q0, grads[:2])
    r0 = [t.clone().requires_grad_() for t in theta0]
    r_path = _run(RSGDM(r0, lr=0.05, beta=beta), r0, grads[:2])
    start = np.concatenate([t.numpy().ravel() for t in theta0])
    np.testing.assert_allclose(start - q_path[0], (1 + beta) * (start - r_path[0]), rtol=1e-9, atol=1e-15)
    assert not np.allclose(q_path[1], r_path[1], rtol=1e-6)


def test_apollo_is_ma_2020_not_the_2024_method() -> None:
    info = optimizer_info("apollo")
    assert info.cls is po.ApolloDQN and po.ApolloDQN is not po.APOLLO
    assert "Ma 2020" in info.summary and "004" in info.paper
    assert info.defaults["beta"] == 0.9 and info.origin == "pytorch_optimizer"


def test_lookahead_wraps_any_name_and_pulls_back_every_k_steps() -> None:
    """k fast steps of the base, then θ ← slow + α(fast − slow) (slow = θ_0 at the start)."""
    shapes = [(4, 3, 3, 3), (5,)]
    grads = _grads(4, shapes, seed=3)
    paths = []
    for name, extra in (("rsgdm", {}), ("lookahead-rsgdm", {"lookahead_alpha": 0.3, "lookahead_k": 4})):
        ps = [torch.ones(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        paths.append(_run(create_optimizer(name, ps, lr=0.1, beta=0.9, **extra), ps, grads))
    np.testing.assert_allclose(paths[1][:3], paths[0][:3], rtol=1e-14)  # fast steps: the base's
    np.testing.assert_allclose(paths[1][3], 1.0 + 0.3 * (paths[0][3] - 1.0), rtol=1e-13)
    w = create_optimizer("lookahead-wgd-radam-published", [torch.zeros(2, 2, 2, 2, requires_grad=True)])
    assert type(w).__name__ == "Lookahead"
    for bad in (0, 1.0):
        with pytest.raises(ValueError, match=rf"lookahead_alpha={bad}"):
            create_optimizer("lookahead-adam", [torch.zeros(2, requires_grad=True)], lookahead_alpha=bad)
    with pytest.raises(ValueError, match=r"Unknown optimizer 'lookahead-nope'"):
        create_optimizer("lookahead-nope", [torch.zeros(2, requires_grad=True)])


def test_schedule_free_switch_reaches_through_wrappers() -> None:
    for name in ("schedulefree-sgd", "lookahead-schedulefree-adamw", "wgd-schedulefree-sgd"):
        p = torch.ones(3, 2, 2, 2, requires_grad=True)
        opt = create_optimizer(name, [p], lr=0.1)
        for _ in range(3):
            p.grad = torch.randn_like(p)
            opt.step()
        y = p.detach().clone()
        assert set_train_mode(opt, False) and not torch.equal(p, y), f"{name}: eval() moves to x"
        assert set_train_mode(opt, True) and torch.allclose(p, y, atol=1e-6), f"{name}: train() back to y"
    assert set_train_mode(create_optimizer("adam", [torch.ones(2, requires_grad=True)]), False) is False


def test_harness_calls_train_before_and_eval_after_every_epoch(tmp_path: Path, monkeypatch) -> None:
    from optimlab.train import TrainConfig, fit

    calls: list[bool] = []
    real = loop_module.set_train_mode

    def recording(opt: torch.optim.Optimizer, training: bool) -> bool:
        calls.append(training)
        return real(opt, training)

    monkeypatch.setattr(loop_module, "set_train_mode", recording)
    cfg = TrainConfig(
        dataset="digits",
        model="mlp",
        optimizer="schedulefree-adamw",
        hparams={"lr": 3e-3},
        epochs=2,
        batch_size=64,
        max_steps_per_epoch=5,
    )
    h = fit(cfg, 0, tmp_path / "r")
    assert calls == [True, False, True, False] and h.final["accuracy"] > 0.2


def test_every_new_entry_is_listed_with_its_convention_and_defaults(capsys) -> None:
    from optimlab.cli import main

    infos = {i.name: i for i in list_optimizers()}
    for name in NEW + ["wgd-radam-published", "wgd-nadam-published"]:
        assert name in infos and infos[name].convention and "lr" in infos[name].defaults, name
    assert set(FIELD) <= set(infos)
    assert main(["list", "optimizers"]) == 0
    out = capsys.readouterr().out
    for word in ("apollo", "adan", "qhm", "ema (momentum", "lookahead-adam", "schedulefree"):
        assert word in out, word


def test_new_entries_run_in_compare_and_tune(tmp_path: Path) -> None:
    from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
    from optimlab.experiments.validate import check_experiment
    from optimlab.tune.search import tune

    specs = tuple(OptimizerSpec(n, n, {}) for n in NEW + ["wgd-radam-published", "wgd-nadam-published"])
    cfg = ExperimentConfig(
        name="field",
        dataset="digits",
        model="cnn",
        width=0.25,
        optimizers=specs,
        seeds=(0,),
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=3,
        no_decay=True,
    )
    check_experiment(cfg)  # builds every optimizer on the model's real parameters
    small = ExperimentConfig(
        name="field",
        dataset="digits",
        model="mlp",
        optimizers=specs[:4:3],
        seeds=(0,),
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=3,
    )
    results = run_experiment(small, tmp_path / "cmp", progress=False)
    assert [r.status for r in results] == ["done", "done"]
    t = tune(small, tmp_path / "tune", budget=2, lr_range=(1e-3, 1e-2), final_seeds=(0,), progress=False)
    assert t is not None and (tmp_path / "tune" / "tune.md").is_file()


def test_pytorch_optimizer_errors_become_value_errors_naming_the_optimizer() -> None:
    for name in ("apollo", "adan", "mars", "qhm", "lion", "schedulefree-sgd"):
        with pytest.raises(ValueError, match=rf"optimizer '{name}'.*lr"):
            create_optimizer(name, [torch.zeros(3, requires_grad=True)], lr=-1.0)


@pytest.mark.parametrize("name", ["schedulefree-sgd", "lookahead-wgd-sgdm"])
def test_interrupted_run_resumes_bit_identical(tmp_path: Path, name: str) -> None:
    """Schedule-Free (checkpointed at x, in eval mode) and Lookahead (its own state_dict layout)."""
    from optimlab.train import fit
    from test_resume_kill import DIGITS, Interrupt, _assert_same_run

    config = DIGITS.replace(optimizer=name, hparams={"lr": 0.05}, epochs=3, max_steps_per_epoch=7)

    def stop(epoch, history):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, 1, run_dir=tmp_path / "cut", callback=stop)
    resumed = fit(config, 1, run_dir=tmp_path / "cut")
    whole = fit(config, 1, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)


def test_tmsgd_switch_reaches_through_lookahead() -> None:
    from optimlab.optim import start_multistep

    opt = create_optimizer("lookahead-wgd-tmsgd", [torch.zeros(3, requires_grad=True)], lr=0.1)
    assert isinstance(opt, po.Lookahead) and isinstance(opt.optimizer, WGD) and isinstance(opt.optimizer.base, TMSGD)
    assert start_multistep(opt) and opt.optimizer.base.is_multistep
    assert start_multistep(create_optimizer("lookahead-adam", [torch.zeros(3, requires_grad=True)])) is False
