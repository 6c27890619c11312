r"""Study `ema`: paper 002's exponentially weighted averages, its temperature example and its claims.

    v_0 = 0,  v_t = β v_{t−1} + (1 − β) x_t = Σ_{i=1}^{t} (1 − β) β^{t−i} x_i   (eqs. 4–8)
    bias correction  v̂_t = v_t / (1 − β^t)                                       (eq. 10)
    "averaging over about 1/(1 − β) days"                                        (eq. 9)

Checked: the worked example (β = 0.8, temperatures 20, 23, 17 → v = 4, 7.8, 9.64), the weights,
what "1/(1 − β) days" means numerically, the start-up deficit and its correction on a seeded
synthetic temperature year, and the paper's warning that bias correction "may explode" for
β = 0.999: true only if the corrected value is fed back into the recursion (one reading of eq. 10
written as an assignment), false for the usual output-only correction, which is a convex combination
of the data. Sequences come from optimlab.reference.ema_sequence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from optimlab.reference import ema_sequence
from optimlab.studies._report import (
    GENERATED_NOTE,
    StudyResult,
    figures_section,
    markdown_table,
    new_figure,
    publish,
    save_figure,
)

NAME = "ema"
EXAMPLE_BETA = 0.8
EXAMPLE_TEMPS = (20.0, 23.0, 17.0)  # paper 002's table: days 1-3
EXAMPLE_V = (4.0, 7.8, 9.64)  # the values the paper prints
BETAS = (0.5, 0.8, 0.9, 0.98)
DAYS = 180  # the paper's "recent 180 days"
SEED = 2002
EXPLODE_BETA = 0.999  # the paper's example of an exploding correction
START_DAYS = 10  # start-up window for the deficit
SKIP_DAYS = 30  # RMSE vs the seasonal curve over days > SKIP_DAYS


def synthetic_temperatures(days: int = DAYS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A seeded temperature series: seasonal curve (°C) + AR(1) weather noise (φ = 0.6, σ = 2.5)."""
    rng = np.random.default_rng(seed)
    d = np.arange(1, days + 1)
    seasonal = 16.0 + 9.0 * np.sin(2 * np.pi * (d - 40) / 365.0)  # spring into summer
    noise = np.zeros(days)
    eps = 2.5 * rng.standard_normal(days)
    for i in range(days):
        noise[i] = (0.6 * noise[i - 1] if i else 0.0) + eps[i]
    return seasonal + noise, seasonal


def feedback_corrected(xs: np.ndarray, beta: float) -> np.ndarray:
    """Eq. 10 read as an assignment inside the recursion: v_t ← (β v_{t−1} + (1−β) x_t)/(1 − β^t)."""
    v, out = 0.0, []
    for t, x in enumerate(xs, start=1):
        v = (beta * v + (1.0 - beta) * x) / (1.0 - beta**t)
        out.append(v)
    return np.array(out)


def window_numbers(beta: float) -> dict[str, float]:
    """What "averaging over 1/(1 − β) days" amounts to."""
    n = 1.0 / (1.0 - beta)
    return {
        "window": n,  # eq. 9
        "weight_left_after_window": beta**n,  # ≈ 1/e: weight of days older than the window
        "mean_age": beta / (1.0 - beta),  # Σ k (1−β) β^k: the average delay of the EMA
        "days_for_63pct": math.ceil(math.log(1.0 - (1.0 - 1.0 / math.e)) / math.log(beta)),
        "boxcar_same_noise": (1.0 + beta) / (1.0 - beta),  # boxcar length with the same noise variance
    }


def compute() -> dict[str, Any]:
    ex = ema_sequence(np.array(EXAMPLE_TEMPS), EXAMPLE_BETA)
    ex_hat = ema_sequence(np.array(EXAMPLE_TEMPS), EXAMPLE_BETA, bias_correction=True)
    n = 20
    weights = (1 - EXAMPLE_BETA) * EXAMPLE_BETA ** (n - np.arange(1, n + 1))  # eq. 8, α_i for i = 1..n
    temps, seasonal = synthetic_temperatures()
    curves, table = {}, {}
    for beta in BETAS:
        v = ema_sequence(temps, beta)
        v_hat = ema_sequence(temps, beta, bias_correction=True)
        curves[beta] = (v, v_hat)
        late = slice(SKIP_DAYS, None)
        table[beta] = {
            **window_numbers(beta),
            "start_mean_v": float(v[:START_DAYS].mean()),
            "start_mean_v_hat": float(v_hat[:START_DAYS].mean()),
            "start_mean_data": float(temps[:START_DAYS].mean()),
            "rmse_v_hat_vs_seasonal": float(np.sqrt(np.mean((v_hat[late] - seasonal[late]) ** 2))),
            "lag_days_fit": _best_shift(v_hat[late], seasonal, SKIP_DAYS),
        }
    raw_rmse = float(np.sqrt(np.mean((temps[SKIP_DAYS:] - seasonal[SKIP_DAYS:]) ** 2)))
    hat_big = ema_sequence(temps, EXPLODE_BETA, bias_correction=True)
    fb_big = feedback_corrected(temps, EXPLODE_BETA)
    return {
        "example_v": ex,
        "example_v_hat": ex_hat,
        "weights": weights,
        "temps": temps,
        "seasonal": seasonal,
        "curves": curves,
        "table": table,
        "raw_rmse": raw_rmse,
        "explode": {
            "output_max": float(np.max(np.abs(hat_big))),
            "data_min": float(temps.min()),
            "data_max": float(temps.max()),
            "output_min": float(np.min(hat_big)),
            "feedback_log10_max": float(np.log10(np.max(np.abs(fb_big)))),
            "feedback_day3": float(fb_big[2]),
        },
    }


def _best_shift(est: np.ndarray, seasonal: np.ndarray, start: int) -> int:
    """Integer delay d (0..40 days) minimizing the mean squared gap between est_t and seasonal_{t−d}."""
    t = np.arange(start, start + est.size)
    gaps = [np.mean((est - seasonal[t - d]) ** 2) for d in range(0, min(41, start + 1))]
    return int(np.argmin(gaps))


def _fig_curves(data: dict[str, Any], path: Path) -> Path:
    fig, axes = new_figure(1, 2, width=11.0, height=3.8, sharey=True)
    d = np.arange(1, DAYS + 1)
    for ax, corrected in zip(axes, (False, True)):
        ax.plot(d, data["temps"], ".", color="0.6", ms=3, label="temperature")
        ax.plot(d, data["seasonal"], "k--", lw=1, label="seasonal curve")
        for i, beta in enumerate(BETAS):
            ax.plot(d, data["curves"][beta][int(corrected)], color=f"C{i}", lw=1.2, label=f"β = {beta}")
        ax.set_xlabel("day")
        ax.set_title("bias-corrected v_t/(1−β^t)" if corrected else "v_t (v_0 = 0)", fontsize=10)
    axes[0].set_ylabel("°C")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _fig_weights(data: dict[str, Any], path: Path) -> Path:
    fig, ax = new_figure(width=5.5, height=3.2)
    ax.bar(np.arange(1, 21), data["weights"], color="C0")
    ax.set_xlabel("day i (n = 20)")
    ax.set_ylabel("weight α_i = (1−β)β^(n−i)")
    ax.set_title(f"EMA weights, β = {EXAMPLE_BETA} (sum {data['weights'].sum():.4f} = 1 − β^20)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _page(data: dict[str, Any], figs: list[Path]) -> list[str]:
    return [
        f"# Exponentially weighted averages (paper 002, §3.1)\n\n{GENERATED_NOTE.format(name=NAME)}",
        _example_section(data),
        _betas_section(data),
        _findings_section(data),
        figures_section(figs),
    ]


def _example_section(data: dict[str, Any]) -> str:
    rows = [[t + 1, EXAMPLE_TEMPS[t], data["example_v"][t], EXAMPLE_V[t], data["example_v_hat"][t]] for t in range(3)]
    return (
        "## The temperature example (β = 0.8, v_0 = 0)\n\n"
        + markdown_table(["day", "temperature", "v_t (computed)", "v_t (paper)", "v_t/(1−β^t)"], rows, digits=10)
        + "\n\nThe paper's numbers are reproduced exactly (to rounding). The corrected values are "
        "weighted averages of the temperatures seen so far; the uncorrected ones start near 0."
    )


def _betas_section(data: dict[str, Any]) -> str:
    tab = data["table"]
    rows = [
        [
            b,
            t["window"],
            t["weight_left_after_window"],
            t["mean_age"],
            t["days_for_63pct"],
            t["boxcar_same_noise"],
            t["start_mean_data"],
            t["start_mean_v"],
            t["start_mean_v_hat"],
            t["rmse_v_hat_vs_seasonal"],
            t["lag_days_fit"],
        ]
        for b, t in tab.items()
    ]
    return (
        f"## Several β on a synthetic temperature year ({DAYS} days, seed {SEED})\n\n"
        "Seasonal curve 16 + 9·sin(2π(d − 40)/365) °C plus AR(1) weather noise (φ = 0.6, σ = 2.5). "
        f"Window 1/(1−β) (eq. 9); weight older than the window β^(1/(1−β)) (→ 1/e = 0.368); mean age of the weights "
        f"β/(1−β); days holding 63.2 % of the weight; boxcar length with the same noise variance (1+β)/(1−β); "
        f"mean of the first {START_DAYS} days (data, v, corrected v̂); RMSE of v̂ against the seasonal curve after "
        f"day {SKIP_DAYS} (raw data: {data['raw_rmse']:.3f}); lag = shift of the seasonal curve that fits v̂ best.\n\n"
        + markdown_table(
            [
                "β",
                "1/(1−β)",
                "β^(1/(1−β))",
                "mean age",
                "63% days",
                "boxcar ≡ noise",
                "data, first days",
                "v, first days",
                "v̂, first days",
                "RMSE v̂",
                "lag (days)",
            ],
            rows,
            digits=4,
        )
    )


def _findings_section(data: dict[str, Any]) -> str:
    tab, ex = data["table"], data["explode"]
    return "## Findings\n\n" + "\n".join(
        [
            f"- v = {', '.join(f'{x:.12g}' for x in data['example_v'])} for 20, 23, 17 at β = 0.8: the paper's 4, 7.8, 9.64.",
            f"- The weights α_i = (1−β)β^(n−i) sum to 1 − β^n ({data['weights'].sum():.6f} for n = 20): the missing "
            "β^n is the start-up deficit that v_t/(1−β^t) removes (corrected weights sum to 1).",
            '- "About 1/(1−β) days" is a rule of thumb: the weights\' mean age is β/(1−β) = 1/(1−β) − 1 days, '
            "β^(1/(1−β)) of the weight (≈ 1/e, e.g. "
            f"{tab[0.9]['weight_left_after_window']:.3f} at β = 0.9) is older than the window, and for noise "
            "averaging the EMA acts like a boxcar of (1+β)/(1−β) ≈ 2/(1−β) days.",
            f"- Start-up: over the first {START_DAYS} days at β = 0.9 the data average {tab[0.9]['start_mean_data']:.2f} °C, "
            f"v averages {tab[0.9]['start_mean_v']:.2f} and v̂ {tab[0.9]['start_mean_v_hat']:.2f}; at β = 0.98 "
            f"v is {tab[0.98]['start_mean_v']:.2f} (corrected {tab[0.98]['start_mean_v_hat']:.2f}).",
            "- Larger β smooths more but lags more: RMSE of v̂ against the seasonal curve "
            + ", ".join(
                f"{tab[b]['rmse_v_hat_vs_seasonal']:.2f} (β = {b}, lag {tab[b]['lag_days_fit']} d)" for b in BETAS
            )
            + ".",
            f"- The paper's warning that bias correction explodes for β = {EXPLODE_BETA}: with the usual output-only "
            f"correction v̂ stays inside the data range (v̂ ∈ [{ex['output_min']:.2f}, {ex['output_max']:.2f}], data "
            f"[{ex['data_min']:.2f}, {ex['data_max']:.2f}]) because v̂_t is a weighted average with weights summing to 1. "
            "It does explode if the corrected value is fed back into the recursion (eq. 10 read as an assignment): "
            f"day 3 already {ex['feedback_day3']:.3g}, max 10^{ex['feedback_log10_max']:.0f} after {DAYS} days.",
        ]
    )


def _findings(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers the page states, flat: the tests read them."""
    findings: dict[str, Any] = {
        "example_v": [float(x) for x in data["example_v"]],
        "example_v_hat": [float(x) for x in data["example_v_hat"]],
        "weights_sum_n20": float(data["weights"].sum()),
        "raw_rmse": data["raw_rmse"],
        **{f"explode/{k}": v for k, v in data["explode"].items()},
        **{f"beta/{b}/{k}": v for b, t in data["table"].items() for k, v in t.items()},
    }
    return findings


def run(out_dir: Path) -> StudyResult:
    """Compute the study, write ema.md and its figures into out_dir, return the findings."""
    return publish(out_dir, NAME, compute, _page, _findings, [("curves", _fig_curves), ("weights", _fig_weights)])
