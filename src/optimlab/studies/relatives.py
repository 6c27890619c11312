r"""Study `relatives`: RSGDM among its relatives — is its gradient-difference correction anything
more than Nesterov momentum?

The algebra (README, tests/test_rsgdm_identity.py, tests/test_field.py): with one buffer,

    RSGDM       n_t = (1−β)·g_t + β·m̃_t,  m̃_t = β·m̃_{t−1} + (1−β)·g_t,  m̃_1 = 0 (g_1 left out)
    NAG (EMA)   the same with m_1 = (1−β)·g_1   (= torch's nesterov SGD at lr·(1−β))
    QHM(ν = β)  θ −= lr·(ν·buf + (1−ν)·g), buf the EMA of g: the same map as NAG (EMA)

so RSGDM, NAG in EMA form and QHM with ν = β differ only in RSGDM's first step. Adan and MARS also
add a gradient-difference term, but inside an adaptive (Adam-like) method. The study measures, with
the same search budget for every optimizer:

1. the four 2-D test functions of the `trajectories` study: every optimizer on the same half-decade
   lr grid (trajectories.LR_GRID), STEPS steps, chosen by final f − f*; and how far RSGDM's path is
   from NAG (EMA)'s at the same lr;
2. scikit-learn's digits (cnn, width DIGITS_WIDTH, DIGITS_EPOCHS epochs): each optimizer gets
   LR_POINTS learning rates (half-decades around its family's anchor), chosen by mean validation
   accuracy over TUNE_SEEDS, then rerun on FINAL_SEEDS; test accuracy is compared paired by seed
   against NAG (EMA) (mean difference, 95% t interval, paired t-test p). One torch thread.

MARS runs with ``optimize_1d=True`` (its rule on every tensor; the library's default sends 1-D
tensors to plain AdamW, which on a 2-element problem would make it AdamW).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimlab.studies._report import (
    GENERATED_NOTE,
    StudyResult,
    below,
    figures_section,
    markdown_table,
    new_figure,
    publish,
    save_figure,
)
from optimlab.studies.trajectories import (
    FUNCTIONS,
    GAP_FLOOR,
    LR_GRID,
    TOL,
    TestFunction,
    choose_lr,
    summarize_path,
)

NAME = "relatives"
BETA = 0.9
STEPS = 300
EMA_ANCHOR, ADAPTIVE_ANCHOR = 0.3, 3e-3  # digits lr grids: anchor × 10^(k/2), k = -3..2
LR_POINTS = tuple(10.0 ** (k / 2) for k in range(-3, 3))
TUNE_SEEDS = (100, 101)
FINAL_SEEDS = (0, 1, 2, 3, 4)
DIGITS_WIDTH, DIGITS_EPOCHS, DIGITS_BATCH = 0.25, 3, 32
BASELINE = "nag-ema"


@dataclass(frozen=True)
class Arm:
    label: str
    name: str  # registry name
    hparams: dict[str, Any] = field(default_factory=dict)
    lr_scale: float = 1.0  # registry lr = lr_scale × the searched lr (NAG: EMA units → torch's)
    anchor: float = EMA_ANCHOR
    note: str = ""


ARMS = (
    Arm("rsgdm", "rsgdm", {"beta": BETA}, note="paper 000: EMA momentum + β·EMA of g_t − g_{t−1}"),
    Arm("sgdm-ema", "sgdm-ema", {"beta": BETA}, note="the papers' SGDM (EMA form)"),
    Arm("nag-ema", "nag", {"momentum": BETA}, 1.0 - BETA, note="torch's Nesterov SGD at lr·(1−β): NAG in EMA form"),
    Arm("qhm-nu=beta", "qhm", {"momentum": BETA, "nu": BETA}, note="QHM with ν = β"),
    Arm("adan", "adan", {}, anchor=ADAPTIVE_ANCHOR, note="pytorch_optimizer defaults, betas (0.98, 0.92, 0.99)"),
    Arm(
        "mars",
        "mars",
        {"optimize_1d": True},
        anchor=ADAPTIVE_ANCHOR,
        note="MARS-AdamW, γ = 0.025, betas (0.95, 0.99), on every tensor",
    ),
)


def _make(arm: Arm, params: list[Any], lr: float) -> Any:
    from optimlab.optim import create_optimizer

    return create_optimizer(arm.name, params, lr=lr * arm.lr_scale, **arm.hparams)


def run_path(
    arm: Arm, fn: Any, lr: float, steps: int | None = None, start: tuple[float, float] | None = None
) -> np.ndarray:
    """θ_0..θ_steps of one optimizer at one lr on one 2-D function (float64, closed-form gradients),
    from fn.start or `start`."""
    import torch

    start = fn.start if start is None else start
    steps = STEPS if steps is None else steps
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = _make(arm, [p], lr)
    out = np.empty((steps + 1, 2))
    out[0] = start
    with torch.no_grad():
        for k in range(1, steps + 1):
            gx, gy = fn.grad(p[0], p[1])
            p.grad = torch.stack([gx, gy])
            opt.step()
            out[k] = p.numpy()
    return out


def _functions() -> dict[str, Any]:
    results: dict[tuple[str, str], dict[str, Any]] = {}
    paths: dict[tuple[str, str], np.ndarray] = {}
    same_lr_gap: dict[str, float] = {}
    for fn in FUNCTIONS:
        for arm in ARMS:
            with np.errstate(over="ignore", invalid="ignore"):
                grid = [run_path(arm, fn, lr) for lr in LR_GRID]
            sums = [summarize_path(fn, g) for g in grid]
            i = choose_lr(sums, LR_GRID)
            results[(fn.name, arm.label)] = {**sums[i], "lr": LR_GRID[i]}
            paths[(fn.name, arm.label)] = grid[i]
        lr = results[(fn.name, BASELINE)]["lr"]  # RSGDM vs NAG (EMA) and QHM at NAG's chosen lr
        rs, nag, qhm = (run_path(a, fn, lr) for a in (ARMS[0], ARMS[2], ARMS[3]))
        # QHM (fresh buffer = RSGDM's m̃_1 = 0) started at RSGDM's θ_1 takes RSGDM's steps 2, 3, …
        later = run_path(ARMS[3], fn, lr, steps=STEPS - 1, start=tuple(rs[1]))
        with np.errstate(invalid="ignore"):
            same_lr_gap[fn.name] = float(np.nanmax(np.abs(rs - nag)))
            same_lr_gap[fn.name + "/qhm-vs-nag"] = float(np.nanmax(np.abs(qhm - nag)))
            same_lr_gap[fn.name + "/rsgdm-vs-qhm-from-step-2"] = float(np.nanmax(np.abs(rs[1:] - later)))
    return {"results": results, "paths": paths, "same_lr": same_lr_gap}


def _digits() -> dict[str, Any]:
    import torch

    from optimlab.train import TrainConfig, fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = TrainConfig(
            dataset="digits", model="cnn", width=DIGITS_WIDTH, epochs=DIGITS_EPOCHS, batch_size=DIGITS_BATCH
        )
        search: dict[str, list[float]] = {}
        chosen: dict[str, float] = {}
        final: dict[str, list[float]] = {}
        for arm in ARMS:
            lrs = [arm.anchor * k for k in LR_POINTS]
            vals = []
            for lr in lrs:
                cfg = base.replace(optimizer=arm.name, hparams={**arm.hparams, "lr": lr * arm.lr_scale})
                accs = [fit(cfg, s).final_val["accuracy"] for s in TUNE_SEEDS]
                vals.append(float(np.mean(accs)) if all(map(math.isfinite, accs)) else -math.inf)
            search[arm.label] = vals
            best = max(range(len(lrs)), key=lambda j: (vals[j], -lrs[j]))  # ties: the smaller lr
            chosen[arm.label] = lrs[best]
            cfg = base.replace(optimizer=arm.name, hparams={**arm.hparams, "lr": lrs[best] * arm.lr_scale})
            final[arm.label] = [fit(cfg, s).final["accuracy"] for s in FINAL_SEEDS]
    finally:
        torch.set_num_threads(threads)
    return {"search": search, "chosen": chosen, "final": final}


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of a − b over seeds, its 95% Student-t interval and the paired t-test p (scipy)."""
    from scipy import stats

    d = np.asarray(a) - np.asarray(b)
    mean = float(d.mean())
    if np.allclose(d, d[0]):
        return {"mean": mean, "lo": mean, "hi": mean, "p": 1.0 if mean == 0 else 0.0}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "p": float(stats.ttest_rel(a, b).pvalue)}


def compute() -> dict[str, Any]:
    data = _functions()
    data["digits"] = _digits()
    fin = data["digits"]["final"]
    data["digits"]["paired"] = {a.label: paired(fin[a.label], fin[BASELINE]) for a in ARMS if a.label != BASELINE}
    return data


def _steps_text(r: dict[str, Any]) -> str:
    if r["diverged"]:
        return "diverged"
    return str(r["steps_to_tol"]) if r["steps_to_tol"] is not None else "did not converge"


def _pct(x: float) -> str:
    return f"{100 * x:+.2f}"


def _page(data: dict[str, Any], figs: list[Path]) -> list[str]:
    return [
        f"# RSGDM among its relatives\n\n{GENERATED_NOTE.format(name=NAME)}",
        _arms_section(),
        _functions_intro(),
        *(_function_section(fn, data["results"]) for fn in FUNCTIONS),
        _same_rule_section(data),
        _digits_section(data["digits"]),
        _findings_section(data),
        figures_section(figs),
    ]


def _arms_section() -> str:
    return (
        "Is RSGDM's gradient-difference correction anything more than Nesterov momentum? Algebraically no: "
        "RSGDM, NAG in EMA form and QHM with ν = β are one update rule, θ −= lr·((1−β)·g_t + β·m_t) with m the "
        "EMA of the gradients, and differ only in whether g_1 enters the buffer (RSGDM leaves it out, so its "
        "first step is (1−β)·g_1 where the others take (1−β²)·g_1). Adan and MARS put a gradient-difference "
        "term into adaptive methods. Arms (β = "
        + f"{BETA}"
        + " for the EMA family):\n\n"
        + "\n".join(f"- `{a.label}`: `{a.name}` {a.hparams or ''} — {a.note}" for a in ARMS)
    )


def _functions_intro() -> str:
    return (
        "## 2-D test functions\n\nThe `trajectories` study's functions and rules: " + f"{STEPS}" + " steps, float64, "
        "every optimizer on the same lr grid {" + ", ".join(f"{lr:.3g}" for lr in LR_GRID) + "} (lr in EMA "
        "units: NAG runs torch's nesterov SGD at lr·(1−β)), chosen by final f − f* (gaps < "
        f"{GAP_FLOOR:g} tie; then fewer steps to f − f* ≤ {TOL:g}; then the smaller lr)."
    )


def _function_section(fn: TestFunction, res: dict[tuple[str, str], dict[str, Any]]) -> str:
    rows = []
    for arm in ARMS:
        r = res[(fn.name, arm.label)]
        gap = below(r["final_gap"], GAP_FLOOR, digits=3) if math.isfinite(r["final_gap"]) else "∞"
        rows.append([arm.label, f"{r['lr']:.3g}", gap, _steps_text(r)])
    return f"### {fn.name}\n\n{fn.note}.\n\n" + markdown_table(
        ["optimizer", "chosen lr", "final f − f*", f"steps to {TOL:g}"], rows, digits=3
    )


def _same_rule_section(data: dict[str, Any]) -> str:
    res = data["results"]
    same = data["same_lr"]
    rows = [
        [
            fn.name,
            f"{res[(fn.name, BASELINE)]['lr']:.3g}",
            below(same[fn.name + "/qhm-vs-nag"], 1e-12, 2),
            below(same[fn.name + "/rsgdm-vs-qhm-from-step-2"], 1e-12, 2),
            below(same[fn.name], 1e-12, 2),
        ]
        for fn in FUNCTIONS
    ]
    return (
        f"### Same lr, same rule\n\nAt NAG (EMA)'s chosen lr, the largest coordinate difference between "
        f"paths over {STEPS} steps: QHM(ν = β) against NAG (EMA); RSGDM against QHM started at RSGDM's θ_1 "
        "with a fresh buffer (the algebra says: the same steps from step 2 on); and RSGDM against NAG "
        "(EMA) from the same start, where only the first step differs.\n\n"
        + markdown_table(["function", "lr", "QHM − NAG", "RSGDM − QHM from θ_1", "RSGDM − NAG"], rows)
    )


def _digits_section(dg: dict[str, Any]) -> str:
    lrs_ema = ", ".join(f"{EMA_ANCHOR * k:.3g}" for k in LR_POINTS)
    lrs_ad = ", ".join(f"{ADAPTIVE_ANCHOR * k:.3g}" for k in LR_POINTS)
    rows = []
    for arm in ARMS:
        acc = np.asarray(dg["final"][arm.label])
        pr = dg["paired"].get(arm.label)
        wins = int(np.sum(acc > np.asarray(dg["final"][BASELINE]))) if pr else None
        rows.append(
            [
                arm.label,
                f"{dg['chosen'][arm.label]:.3g}",
                f"{100 * acc.mean():.2f}",
                "baseline" if pr is None else f"{_pct(pr['mean'])} [{_pct(pr['lo'])}, {_pct(pr['hi'])}]",
                "" if pr is None else f"{pr['p']:.2g}",
                "" if pr is None else f"{wins}/{len(acc)}",
            ]
        )
    return (
        "## Digits, tuned with equal budgets\n\n"
        f"scikit-learn's digits, `cnn` at width {DIGITS_WIDTH}, {DIGITS_EPOCHS} epochs, batch {DIGITS_BATCH}, constant "
        f"lr, one torch thread. Each optimizer gets {len(LR_POINTS)} learning rates — EMA family {{{lrs_ema}}}, Adan "
        f"and MARS {{{lrs_ad}}} — scored by mean final validation accuracy over seeds {list(TUNE_SEEDS)}; the best "
        f"is rerun on seeds {list(FINAL_SEEDS)} and judged on the test split, paired by seed against `{BASELINE}` "
        "(Δ in points, 95% t interval, paired t-test p).\n\n"
        + markdown_table(
            ["optimizer", "chosen lr", "test accuracy %", "Δ vs nag-ema pp [95% CI]", "paired t p", "wins"], rows
        )
    )


def _findings_section(data: dict[str, Any]) -> str:
    dg, same = data["digits"], data["same_lr"]
    rs = dg["paired"]["rsgdm"]
    verdict = (
        "indistinguishable from" if rs["lo"] <= 0 <= rs["hi"] else ("better than" if rs["mean"] > 0 else "worse than")
    )
    lines = [
        "- The algebra holds on every function: QHM(ν = β) and NAG (EMA) are the same algorithm, and RSGDM takes "
        "QHM's steps once its first step is matched (differences at round-off level). The first step alone is "
        "not negligible on curved functions: started from the same point, RSGDM's and NAG's paths end up to "
        + f"{max(same[fn.name] for fn in FUNCTIONS):.2g} apart (in θ) after {STEPS} steps, while converging alike.",
        f"- On digits RSGDM is {verdict} NAG (EMA): Δ = {_pct(rs['mean'])} points [{_pct(rs['lo'])}, {_pct(rs['hi'])}] "
        f"over {len(FINAL_SEEDS)} seeds. The gradient-difference correction of RSGDM is Nesterov momentum; "
        "whatever it gains over SGDM is Nesterov's gain, not a new mechanism.",
        "- NAG (EMA) and QHM(ν = β) are one algorithm, yet the search chose lr "
        f"{dg['chosen'][BASELINE]:.3g} for one and {dg['chosen']['qhm-nu=beta']:.3g} for the other"
        + (" — " if dg["chosen"][BASELINE] != dg["chosen"]["qhm-nu=beta"] else " (the same) — ")
        + "in float32 the two implementations round differently and training amplifies the difference, so "
        "their validation scores differ by seed-level noise. Differences of this size between any two rows "
        "are not evidence.",
        "- Adan and MARS are different methods (adaptive step sizes), so their rows measure more than the "
        "gradient difference; at this scale they are "
        + ", ".join(
            f"{a} {_pct(dg['paired'][a]['mean'])} pp [{_pct(dg['paired'][a]['lo'])}, {_pct(dg['paired'][a]['hi'])}]"
            for a in ("adan", "mars")
        )
        + " against NAG (EMA).",
        "- Small models and toy functions: this says the RSGDM family collapses to one rule, not which optimizer "
        "wins on large networks.",
    ]
    return "## Findings\n\n" + "\n".join(lines)


def _fig_paths(data: dict[str, Any], path: Path) -> Path:
    fig, axes = new_figure(1, 2, width=11.0, height=4.4)
    for ax, fn in zip(axes, (FUNCTIONS[0], FUNCTIONS[3])):
        xs, ys = np.linspace(*fn.xlim, 200), np.linspace(*fn.ylim, 200)
        X, Y = np.meshgrid(xs, ys)
        Z = fn.f(X, Y) - fn.f_star
        ax.contour(X, Y, Z, levels=np.geomspace(max(Z.min(), 1e-3), Z.max(), 16), colors="0.75", linewidths=0.6)
        for i, arm in enumerate(ARMS):
            p = data["paths"][(fn.name, arm.label)]
            lr = data["results"][(fn.name, arm.label)]["lr"]
            ax.plot(
                p[:, 0], p[:, 1], "-" if i % 2 == 0 else "--", color=f"C{i}", lw=1.1, label=f"{arm.label} (lr {lr:.2g})"
            )
        ax.plot(*fn.start, "ko", ms=5)
        for m in fn.minimizers:
            ax.plot(*m, "k*", ms=10)
        ax.set_xlim(*fn.xlim)
        ax.set_ylim(*fn.ylim)
        ax.set_title(f"{fn.name}: {STEPS} steps at the searched lr", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _fig_digits(data: dict[str, Any], path: Path) -> Path:
    fig, ax = new_figure(width=7.0, height=4.2)
    dg = data["digits"]
    for i, arm in enumerate(ARMS):
        rel = [k for k in LR_POINTS]
        vals = [100 * v if math.isfinite(v) else np.nan for v in dg["search"][arm.label]]
        ax.plot(rel, vals, "o-" if i % 2 == 0 else "s--", color=f"C{i}", label=f"{arm.label} (× {arm.anchor:g})")
    ax.set_xscale("log")
    ax.set_xlabel("lr / family anchor")
    ax.set_ylabel(f"validation accuracy %, mean of seeds {list(TUNE_SEEDS)}")
    ax.set_title("digits: the equal-budget lr search", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _findings(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers the page states, flat: the tests read them."""
    f: dict[str, Any] = {"arms": [a.label for a in ARMS]}
    for (fname, label), r in data["results"].items():
        for key in ("lr", "final_gap", "steps_to_tol", "diverged"):
            f[f"{fname}/{label}/{key}"] = r[key]
    for key, v in data["same_lr"].items():
        f[f"same_lr/{key}"] = v
    dg = data["digits"]
    for label in dg["chosen"]:
        f[f"digits/{label}/lr"] = dg["chosen"][label]
        f[f"digits/{label}/test_accuracy"] = list(dg["final"][label])
        f[f"digits/{label}/search"] = list(dg["search"][label])
    for label, pr in dg["paired"].items():
        for k, v in pr.items():
            f[f"digits/{label}/delta_{k}"] = v
    return f


def run(out_dir: Path) -> StudyResult:
    """Compute the study, write relatives.md and two figures into out_dir."""
    return publish(out_dir, NAME, compute, _page, _findings, [("paths", _fig_paths), ("digits", _fig_digits)])
