"""The numerics of study `ode` (optimlab.studies.ode): the test ODEs, Euler, the Taylor multi-step
rule with its three start-ups, AB2, TM-SGD's reference path, fitted orders, characteristic roots and
stability bounds. The study's page, figures and findings are in ode.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimlab.reference import tmsgd_init, tmsgd_update

T_END = 1.0  # global error measured at t = T_END
STEP_COUNTS = (64, 128, 256, 512, 1024, 2048)  # τ = T_END / N
STARTS = ("exact", "euler", "rest")
TRANSIENT_H = 0.5  # λτ of the early-fluctuation experiment
TRANSIENT_STEPS = 40
RHO_TABLE_H = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)  # h values of the spectral-radius table

Vec = np.ndarray


@dataclass(frozen=True)
class TestODE:
    name: str
    f: Callable[[Vec], Vec]  # right-hand side y' = f(y)
    exact: Callable[[float], Vec]  # exact solution y(t) (valid for the small negative t start-up needs)
    y0: Vec
    note: str


def _quadratic() -> TestODE:
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    R = np.array([[c, -s], [s, c]])
    lam = np.array([1.0, 20.0])  # Hessian eigenvalues: condition number 20
    A = R @ np.diag(lam) @ R.T
    y0 = np.array([1.0, 1.0])
    w0 = R.T @ y0
    return TestODE(
        "quadratic",
        lambda y: -A @ y,
        lambda t: R @ (np.exp(-lam * t) * w0),
        y0,
        "gradient flow y' = −Ay on ½yᵀAy, A = R(30°)·diag(1, 20)·Rᵀ, y(0) = (1, 1)",
    )


TEST_ODES = (
    TestODE(
        "linear", lambda y: -2.0 * y, lambda t: np.array([math.exp(-2.0 * t)]), np.array([1.0]), "y' = −2y, y(0) = 1"
    ),
    _quadratic(),
    TestODE(
        "cubic",
        lambda y: -(y**3),
        lambda t: np.array([1.0 / math.sqrt(1.0 + 2.0 * t)]),
        np.array([1.0]),
        "y' = −y³ (gradient flow of y⁴/4), y(0) = 1, y = 1/√(1+2t)",
    ),
    TestODE(
        "logistic",
        lambda y: y * (1.0 - y),
        lambda t: np.array([1.0 / (1.0 + 9.0 * math.exp(-t))]),
        np.array([0.1]),
        "y' = y(1 − y), y(0) = 0.1",
    ),
)


# ----------------------------------------------------------------------------- integrators
def euler(ode: TestODE, tau: float, n: int) -> np.ndarray:
    """Iterates y_0..y_n of forward Euler."""
    ys = [ode.y0.astype(np.float64)]
    for _ in range(n):
        ys.append(ys[-1] + tau * ode.f(ys[-1]))
    return np.array(ys)


def multistep(ode: TestODE, tau: float, n: int, start: str) -> np.ndarray:
    """Iterates y_0..y_n of the Taylor multi-step rule with the given start-up."""
    y0 = ode.y0.astype(np.float64)
    if start == "exact":
        ys = [ode.exact(k * tau) for k in range(3)]
    elif start == "euler":
        ys = [y0, y0 + tau * ode.f(y0)]
        ys.append(ys[1] + tau * ode.f(ys[1]))
    elif start == "rest":
        ys = [y0, y0, y0]  # y_{−2}, y_{−1}, y_0: zero displacement history
    else:
        raise ValueError(f"Unknown start-up {start!r}; valid: {', '.join(STARTS)}")
    offset = 2 if start == "rest" else 0  # ys[offset] is y_0
    while len(ys) < n + 1 + offset:
        ys.append(1.5 * ys[-1] - ys[-2] + 0.5 * ys[-3] + tau * ode.f(ys[-1]))
    return np.array(ys[offset:])


def ab2(ode: TestODE, tau: float, n: int) -> np.ndarray:
    """Two-step Adams–Bashforth with an exact y_1 (context: same stability interval, smaller error)."""
    ys = [ode.y0.astype(np.float64), ode.exact(tau)]
    while len(ys) < n + 1:
        ys.append(ys[-1] + tau * (1.5 * ode.f(ys[-1]) - 0.5 * ode.f(ys[-2])))
    return np.array(ys)


def tmsgd_reference_path(ode: TestODE, tau: float, n: int) -> np.ndarray:
    """y_0..y_n from optimlab.reference's TM-SGD (switch_step=0) fed the gradient g = −f(y)."""
    theta = ode.y0.astype(np.float64)
    state = tmsgd_init(theta)
    ys = [theta]
    for _ in range(n):
        theta, state = tmsgd_update(state, theta, -ode.f(theta), lr=tau, switch_step=0)
        ys.append(theta)
    return np.array(ys)


METHODS: dict[str, Callable[[TestODE, float, int], np.ndarray]] = {
    "euler": euler,
    "multistep-exact": lambda o, tau, n: multistep(o, tau, n, "exact"),
    "multistep-euler": lambda o, tau, n: multistep(o, tau, n, "euler"),
    "multistep-rest": lambda o, tau, n: multistep(o, tau, n, "rest"),
    "ab2": ab2,
}


def fitted_order(taus: np.ndarray, errors: np.ndarray) -> float:
    """Least-squares slope of log(error) against log(τ)."""
    return float(np.polyfit(np.log(taus), np.log(errors), 1)[0])


def local_errors(ode: TestODE, taus: np.ndarray, t: float = 0.5) -> dict[str, np.ndarray]:
    """One step from exact history at time t: |y(t+τ) − rule(exact past)| for Euler and multi-step."""
    out: dict[str, list[float]] = {"euler": [], "multistep": []}
    for tau in taus:
        y, ym1, ym2 = ode.exact(t), ode.exact(t - tau), ode.exact(t - 2 * tau)
        target = ode.exact(t + tau)
        out["euler"].append(float(np.linalg.norm(target - (y + tau * ode.f(y)))))
        out["multistep"].append(float(np.linalg.norm(target - (1.5 * y - ym1 + 0.5 * ym2 + tau * ode.f(y)))))
    return {k: np.array(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- stability
def char_roots(h: float) -> np.ndarray:
    """Roots of ζ³ − (1.5 − h)ζ² + ζ − 0.5 (multi-step rule applied to y' = −λy, h = λτ)."""
    return np.roots([1.0, -(1.5 - h), 1.0, -0.5])


def spectral_radius(method: str, h: float) -> float:
    if method == "euler":
        return abs(1.0 - h)
    if method == "multistep":
        return float(np.max(np.abs(char_roots(h))))
    if method == "ab2":  # ζ² − (1 − 1.5h)ζ − 0.5h
        return float(np.max(np.abs(np.roots([1.0, -(1.0 - 1.5 * h), -0.5 * h]))))
    raise ValueError(f"Unknown method {method!r}")


def stability_bound(method: str, h_max: float = 6.0, grid: int = 6001, tol: float = 1e-12) -> float:
    """Largest h with spectral radius ≤ 1 on all of (0, h]: first grid crossing, then bisection."""
    hs = np.linspace(0.0, h_max, grid)[1:]
    unstable = [h for h in hs if spectral_radius(method, h) > 1.0 + 1e-12]
    if not unstable:
        return h_max
    hi = unstable[0]
    lo = hi - (hs[1] - hs[0])
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spectral_radius(method, mid) <= 1.0 + 1e-12 else (lo, mid)
    return 0.5 * (lo + hi)


def decay_check(method: str, h: float, steps: int = 3000) -> float:
    """|y_steps| / |y_0| on y' = −y with τ = h (rest start for the multi-step rule)."""
    lin = TestODE("unit", lambda y: -y, lambda t: np.array([math.exp(-t)]), np.array([1.0]), "")
    ys = euler(lin, h, steps) if method == "euler" else multistep(lin, h, steps, "rest")
    return float(abs(ys[-1][0]))


# ----------------------------------------------------------------------------- early fluctuation
def fluctuation(ys: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Max error over the first steps, and the excess total variation over the exact path's
    (Σ_k |y_{k+1} − y_k| summed over coordinates, minus the same for the exact values): 0 when the
    iterates wiggle no more than the solution does."""
    err = np.linalg.norm(ys - exact, axis=-1)
    tv_excess = float(np.sum(np.abs(np.diff(ys, axis=0))) - np.sum(np.abs(np.diff(exact, axis=0))))
    return {"max_error": float(err.max()), "tv_excess": tv_excess}
