r"""Study `trajectories`: the papers' and torch's registered optimizers on 2-D test functions, at a searched learning rate.

Functions (gradients in closed form, float64): Rosenbrock (1−x)² + 100(y−x²)²; Beale; a saddle
x² − y² made bounded below by + y⁴/4 (saddle at 0, minima (0, ±√2), f* = −1: "escape and settle");
an ill-conditioned quadratic ½pᵀAp with A = R(30°)·diag(1, 50)·Rᵀ.

Learning rate: for every (optimizer, function) the grid LR_GRID (half-decades 10^-3.5 … 10^0.5) is run
for STEPS steps; the lr with the smallest final f − f* wins (gaps below GAP_FLOOR count as equal,
ties go to the lr reaching TOL first, then the smaller lr; non-finite or |θ| > 1e6 = diverged). All
lrs of a grid run side by side as param groups of one optimizer (same numbers as separate runs:
state is per parameter). Reported: the chosen lr, final gap, steps to reach f − f* ≤ TOL.

`wgd-*` optimizers only touch conv (4-D) weights (and 2-D with include_linear), so on a 2-element
parameter they are their base optimizer: their rows are run at the base's chosen lr and checked
bit-identical to it; figures show the bases only. TM-SGD/TM-SGD-M switch to the multi-step rule at
step SWITCH_STEP (plain SGD / SGD-momentum before).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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

NAME = "trajectories"
STEPS = 300  # short on purpose: the study must run in seconds (19 optimizers x 4 functions x 9 lrs)
LR_GRID = tuple(10.0 ** (k / 2) for k in range(-7, 2))  # 3.16e-4, 1e-3, …, 1, 3.16
TOL = 1e-4  # "converged" when f − f* ≤ TOL
GAP_FLOOR = 1e-12  # final gaps below this are ties
SWITCH_STEP = 10  # TM-SGD(-M): SGD phase length before the multi-step rule
DIVERGED = 1e6  # |θ| beyond this counts as diverged
WGD_PREFIX = "wgd-"


@dataclass(frozen=True)
class TestFunction:
    name: str
    f: Callable[[np.ndarray, np.ndarray], np.ndarray]  # f(x, y), elementwise (NumPy or torch)
    grad: Callable[[Any, Any], tuple[Any, Any]]  # (∂f/∂x, ∂f/∂y), elementwise
    start: tuple[float, float]
    f_star: float
    minimizers: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    note: str


def _rosen_grad(x, y):
    return -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_grad(x, y):
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    gx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
    gy = 2 * a * x + 4 * b * x * y + 6 * c * x * y**2
    return gx, gy


_C, _S = math.cos(math.pi / 6), math.sin(math.pi / 6)
_A = np.array([[_C, -_S], [_S, _C]]) @ np.diag([1.0, 50.0]) @ np.array([[_C, _S], [-_S, _C]])


def _quad(x, y):
    return 0.5 * (_A[0, 0] * x * x + 2 * _A[0, 1] * x * y + _A[1, 1] * y * y)


def _quad_grad(x, y):
    return _A[0, 0] * x + _A[0, 1] * y, _A[1, 0] * x + _A[1, 1] * y


FUNCTIONS = (
    TestFunction(
        "rosenbrock",
        lambda x, y: (1 - x) ** 2 + 100 * (y - x * x) ** 2,
        _rosen_grad,
        (-1.2, 1.0),
        0.0,
        ((1.0, 1.0),),
        (-2.0, 2.0),
        (-1.0, 3.0),
        "(1−x)² + 100(y−x²)², start (−1.2, 1), min (1, 1)",
    ),
    TestFunction(
        "beale",
        _beale,
        _beale_grad,
        (1.0, 1.5),
        0.0,
        ((3.0, 0.5),),
        (-1.0, 4.0),
        (-1.5, 2.0),
        "Beale, start (1, 1.5), min (3, 0.5)",
    ),
    TestFunction(
        "saddle",
        lambda x, y: x * x - y * y + y**4 / 4,
        lambda x, y: (2 * x, -2 * y + y**3),
        (1.5, 1e-3),
        -1.0,
        ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0))),
        (-2.0, 2.0),
        (-2.0, 2.0),
        "x² − y² + y⁴/4, start (1.5, 0.001), saddle (0, 0), min (0, ±√2), f* = −1",
    ),
    TestFunction(
        "quadratic",
        _quad,
        _quad_grad,
        (2.0, 1.0),
        0.0,
        ((0.0, 0.0),),
        (-2.5, 2.5),
        (-2.5, 2.5),
        "½pᵀAp, A = R(30°)·diag(1, 50)·Rᵀ (condition 50), start (2, 1)",
    ),
)


def optimizer_names() -> list[str]:
    """The papers' and torch's registered optimizers, in registry order (optimlab.list_optimizers):
    the WGD authors' published variants and the field's baselines from pytorch_optimizer are left to
    the relatives study (docs/studies/relatives.md)."""
    from optimlab.optim import list_optimizers
    from optimlab.optim.field import FIELD

    return [
        info.name
        for info in list_optimizers()
        if info.origin in ("torch", "optimlab") and "lookahead" not in info.wrappers and info.name not in FIELD
    ]


def _extra_hparams(name: str) -> dict[str, Any]:
    """Settings beyond the registry defaults: TM-SGD's switch step, and the for-loop implementation
    (foreach=False: one 2-element tensor per param group, where the foreach dispatch only adds cost)."""
    from optimlab.optim import optimizer_info

    extra: dict[str, Any] = {"switch_step": SWITCH_STEP} if name.removeprefix(WGD_PREFIX) in ("tmsgd", "tmsgdm") else {}
    if "foreach" in optimizer_info(name).hparams:
        extra["foreach"] = False
    return extra


def run_paths(name: str, fn: TestFunction, lrs: tuple[float, ...], steps: int = STEPS) -> np.ndarray:
    """Iterates θ_0..θ_steps for each lr: shape (len(lrs), steps + 1, 2). One optimizer, one param group
    (one 2-element float64 parameter) per lr; gradients in closed form."""
    import torch

    from optimlab.optim import create_optimizer

    params = [torch.tensor(fn.start, dtype=torch.float64, requires_grad=True) for _ in lrs]
    opt = create_optimizer(name, [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], **_extra_hparams(name))
    out = np.empty((len(lrs), steps + 1, 2))
    with torch.no_grad():
        P = torch.stack(params)
        out[:, 0] = P.numpy()
        for k in range(1, steps + 1):
            gx, gy = fn.grad(P[:, 0], P[:, 1])
            G = torch.stack([gx, gy], dim=1)
            for i, p in enumerate(params):
                p.grad = G[i]
            opt.step()
            P = torch.stack(params)
            out[:, k] = P.numpy()
    return out


def summarize_path(fn: TestFunction, path: np.ndarray) -> dict[str, Any]:
    """Final gap f − f*, steps to TOL (None if never), diverged flag, for one path (steps + 1, 2)."""
    with np.errstate(over="ignore", invalid="ignore"):
        gaps = fn.f(path[:, 0], path[:, 1]) - fn.f_star
    bad = ~np.isfinite(path).all(1) | (np.abs(path) > DIVERGED).any(1)
    diverged = bool(bad.any())
    final = math.inf if diverged else float(gaps[-1])
    hit = np.flatnonzero((gaps <= TOL) & ~bad)
    return {
        "final_gap": final,
        "steps_to_tol": int(hit[0]) if hit.size else None,
        "diverged": diverged,
        "max_abs_theta": float(np.nanmax(np.abs(path))) if not diverged else math.inf,
    }


def choose_lr(summaries: list[dict[str, Any]], lrs: tuple[float, ...]) -> int:
    """Index of the chosen lr: smallest final gap (floored at GAP_FLOOR), then fewest steps to TOL, then smaller lr."""

    def key(i: int) -> tuple[float, float, float]:
        s = summaries[i]
        steps = s["steps_to_tol"] if s["steps_to_tol"] is not None else math.inf
        return (max(s["final_gap"], GAP_FLOOR), steps, lrs[i])

    return min(range(len(lrs)), key=key)


def compute(names: list[str] | None = None) -> dict[str, Any]:
    names = optimizer_names() if names is None else names
    bases = [n for n in names if not n.startswith(WGD_PREFIX)]
    wgds = [n for n in names if n.startswith(WGD_PREFIX)]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    paths: dict[tuple[str, str], np.ndarray] = {}
    for fn in FUNCTIONS:
        for name in bases:
            grid = run_paths(name, fn, LR_GRID)
            sums = [summarize_path(fn, g) for g in grid]
            i = choose_lr(sums, LR_GRID)
            results[(fn.name, name)] = {**sums[i], "lr": LR_GRID[i], "grid_final_gaps": [s["final_gap"] for s in sums]}
            paths[(fn.name, name)] = grid[i]
        for name in wgds:
            base = name.removeprefix(WGD_PREFIX)
            lr = results[(fn.name, base)]["lr"]
            path = run_paths(name, fn, (lr,))[0]
            same = bool(np.array_equal(path, paths[(fn.name, base)], equal_nan=True))
            results[(fn.name, name)] = {**summarize_path(fn, path), "lr": lr, "identical_to_base": same}
    return {"names": names, "bases": bases, "wgds": wgds, "results": results, "paths": paths}


def _fig_function(fn: TestFunction, data: dict[str, Any], path: Path) -> Path:
    fig, ax = new_figure(width=7.0, height=4.6)
    xs = np.linspace(*fn.xlim, 300)
    ys = np.linspace(*fn.ylim, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = fn.f(X, Y) - fn.f_star
    levels = np.geomspace(max(Z.min(), 1e-3), Z.max(), 18) if Z.min() >= 0 else 18
    ax.contour(X, Y, Z if Z.min() >= 0 else fn.f(X, Y), levels=levels, colors="0.75", linewidths=0.6)
    for i, name in enumerate(data["bases"]):  # tab10 colours, solid then dashed: 14 distinguishable lines
        p = data["paths"][(fn.name, name)]
        lr = data["results"][(fn.name, name)]["lr"]
        ax.plot(p[:, 0], p[:, 1], "-" if i < 10 else "--", color=f"C{i % 10}", lw=1.1, label=f"{name} (lr {lr:.2g})")
    ax.plot(*fn.start, "ko", ms=5)
    for m in fn.minimizers:
        ax.plot(*m, "k*", ms=10)
    ax.set_xlim(*fn.xlim)
    ax.set_ylim(*fn.ylim)
    ax.set_title(f"{fn.name}: {STEPS} steps at the searched lr", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save_figure(fig, path)


def _steps_text(r: dict[str, Any]) -> str:
    if r["diverged"]:
        return "diverged"
    return str(r["steps_to_tol"]) if r["steps_to_tol"] is not None else "did not converge"


def _page(data: dict[str, Any], figs: list[Path]) -> list[str]:
    return [
        f"# Optimizer trajectories on 2-D test functions\n\n{GENERATED_NOTE.format(name=NAME)}",
        _setup_section(data),
        *(_function_section(fn, data) for fn in FUNCTIONS),
        _findings_section(data),
        figures_section(figs),
    ]


def _setup_section(data: dict[str, Any]) -> str:
    names = data["names"]
    return (
        f"Every registered optimizer (`optimlab.list_optimizers()`: {len(names)}), torch, float64, gradients in "
        f"closed form, {STEPS} steps from a fixed start, otherwise registry defaults (TM-SGD/TM-SGD-M switch to "
        f"the multi-step rule at step {SWITCH_STEP}). **Learning-rate search**: lr ∈ {{"
        + ", ".join(f"{lr:.3g}" for lr in LR_GRID)
        + f"}} (half-decades); the lr with the smallest final "
        f"f − f* is chosen (gaps < {GAP_FLOOR:g} tie; ties → fewer steps to tolerance, then smaller lr; diverged "
        f"= non-finite or |θ| > {DIVERGED:g}). Steps to tolerance: first step with f − f* ≤ {TOL:g}. "
        "`wgd-*` rows: run at their base's chosen lr; WGD only centralizes conv (4-D) gradients, so on a "
        "2-element parameter it is a no-op; the last column checks the path is bit-identical to the base's."
    )


def _function_section(fn: TestFunction, data: dict[str, Any]) -> str:
    res, names = data["results"], data["names"]
    rows = []
    for name in names:
        r = res[(fn.name, name)]
        ident = r.get("identical_to_base")
        gap = below(r["final_gap"], GAP_FLOOR, digits=3) if math.isfinite(r["final_gap"]) else "∞"
        rows.append([name, f"{r['lr']:.3g}", gap, _steps_text(r), r["max_abs_theta"], "—" if ident is None else ident])
    return f"## {fn.name}\n\n{fn.note}.\n\n" + markdown_table(
        ["optimizer", "chosen lr", "final f − f*", f"steps to {TOL:g}", "max ‖θ‖∞ on path", "= base (wgd)"],
        rows,
        digits=3,
    )


def _findings_section(data: dict[str, Any]) -> str:
    res = data["results"]
    conv = {
        fn.name: sorted(
            (res[(fn.name, n)]["steps_to_tol"], n)
            for n in data["bases"]
            if res[(fn.name, n)]["steps_to_tol"] is not None
        )
        for fn in FUNCTIONS
    }
    lines = []
    for fn in FUNCTIONS:
        c = conv[fn.name]
        fastest = ", ".join(f"{n} {s}" for s, n in c[:3]) if c else "none"
        lines.append(
            f"- {fn.name}: {len(c)} of {len(data['bases'])} base optimizers reach f − f* ≤ {TOL:g} within "
            f"{STEPS} steps; fastest: {fastest}."
        )
    ident_all = all(res[k].get("identical_to_base", True) for k in res)
    lines.append(
        f"- wgd-* = base on 2-element parameters: {'confirmed for' if ident_all else 'FAILED for some of'} "
        f"{', '.join(data['wgds'])} on all four functions."
    )
    i = LR_GRID.index(10.0**-1.5) if 10.0**-1.5 in LR_GRID else None
    if i is not None and "sgd" in data["bases"] and "tmsgd" in data["bases"]:
        g_sgd, g_tm = res[("quadratic", "sgd")]["grid_final_gaps"][i], res[("quadratic", "tmsgd")]["grid_final_gaps"][i]
        lines.append(
            f"- Stability, as the `ode` study predicts: on the quadratic (λ_max = 50) lr = {LR_GRID[i]:.3g} "
            f"(lr·λ_max = {50 * LR_GRID[i]:.2f}) leaves sgd at f − f* = {below(g_sgd, GAP_FLOOR)} but makes tmsgd "
            f"{'diverge' if math.isinf(g_tm) else f'end at {g_tm:.2g}'}: the multi-step rule needs lr·λ_max < 1, "
            f"SGD < 2. The search picks lr = {res[('quadratic', 'tmsgd')]['lr']:.3g} for tmsgd."
        )
    wild = [
        f"{n} on {fn.name} ({res[(fn.name, n)]['max_abs_theta']:.3g})"
        for fn in FUNCTIONS
        for n in data["bases"]
        if math.isfinite(res[(fn.name, n)]["max_abs_theta"])
        and res[(fn.name, n)]["max_abs_theta"] > 5 * max(map(abs, fn.start))
    ]
    lines.append(
        "- Selecting by final loss alone can pick learning rates whose first steps are wild: max ‖θ‖∞ on "
        "the path above 5× the start's for " + (", ".join(wild) if wild else "none") + "."
    )
    lines.append(
        "- Toy functions at a tuned lr say little about deep-learning performance; they show "
        "qualitative behaviour (overshoot, oscillation across the valley, escape from the saddle)."
    )
    return "## Findings\n\n" + "\n".join(lines)


def _findings(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers the page states, flat: the tests read them."""
    findings: dict[str, Any] = {"optimizers": list(data["names"]), "lr_grid": list(LR_GRID)}
    for (fname, name), r in data["results"].items():
        for key in ("lr", "final_gap", "steps_to_tol", "diverged", "identical_to_base", "grid_final_gaps"):
            if key in r:
                findings[f"{fname}/{name}/{key}"] = r[key]
    return findings


def run(out_dir: Path) -> StudyResult:
    """Compute the study, write trajectories.md and one figure per function into out_dir."""
    return publish(
        out_dir, NAME, compute, _page, _findings, [(fn.name, partial(_fig_function, fn)) for fn in FUNCTIONS]
    )
