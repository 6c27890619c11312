"""Your own training code as the task: `train_function = "package.module:fn"` in an experiment TOML.

    # mypkg/train.py
    def fn(make_optimizer, seed, options):          # once per (optimizer, seed)
        model = build_my_model(seed)
        opt = make_optimizer(model.parameters())    # exactly this run's optimizer: name + hparams
        ...train and evaluate...
        return {"accuracy": 0.93, "loss": 0.21}     # the keys of the TOML's `metrics` table

    train_function = "mypkg.train:fn"
    dataset = "mydata"                              # names for run files and report sections
    model = "mymodel"
    metrics = { accuracy = "higher", loss = "lower" }
    [train_options]                                 # handed to fn as `options` (a fresh copy per run)
    epochs = 3

fit (optimlab.train.loop) seeds torch, NumPy and `random` with the run seed, sets the run's
deterministic-algorithms mode, and calls fn(make_optimizer, seed, options); make_optimizer(params)
is optimlab.optim.create_optimizer(run's optimizer, params, **run's hparams) and may be called more
than once (one optimizer per model part). What fn returns becomes the run's History.final (no
per-epoch curves), so sweeps, workers, Ray, the folder lock, skipping of finished runs, failure
accounting, the statistics and report.md work as for optimlab's own tasks:
  * fn raises -> the run failed (runs/<run_id>.error.json keeps the traceback); the next sweep retries it;
  * fn returns a key `metrics` does not list, misses one, or a non-number -> the run failed (says which);
  * a returned value is NaN or infinite -> the run diverged (History.diverged_reason names the metric).
A finished run is skipped when the reference, train_options, optimizer and seed are the same; the
function's code is not part of that identity (use a new output folder after changing it).
Resume is at run granularity: a run stopped midway starts again from the beginning (optimlab cannot
checkpoint code it does not own); a stop request (Ctrl-C in a sweep) ends it at its next optimizer
step. Each run gets one intra-op thread unless --threads / $OPTIMLAB_THREADS say otherwise (optimlab
cannot estimate the work of code it does not own).

The reference is resolved with importlib (the current directory is searched as well, as for
`python -m`); a module that does not import, a missing attribute or one that is not callable is a
ConfigError naming the reference before any run starts (optimlab.experiments.validate).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from optimlab.tasks.base import Task

DIRECTIONS = ("higher", "lower")
_REFERENCE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # dataset and model name run files
# TrainConfig fields a function run uses; every other one is fit's own training loop's and must stay
# at its default, so a setting that would do nothing (epochs, schedule, augment, ...) is refused
USED_FIELDS = frozenset(
    {"dataset", "model", "task", "optimizer", "hparams", "deterministic", "train_function", "train_options", "metrics"}
)

MakeOptimizer = Callable[[Any], Any]  # params (an iterable of tensors or param-group dicts) -> Optimizer


def _invalid(name: str, value: Any, rule: str) -> ValueError:
    return ValueError(f"TrainConfig.{name}={value!r} is invalid: {rule}")


def check_function_fields(config: Any) -> None:
    """ValueError naming the field when a TrainConfig's train_function fields are malformed (nothing
    is imported here: resolve_train_function does that, before a sweep's first run)."""
    ref = config.train_function
    if ref is None:
        wrong = (
            "task" if config.task == "function" else next(n for n in ("train_options", "metrics") if getattr(config, n))
        )
        raise _invalid(
            wrong, getattr(config, wrong), "needs train_function = 'package.module:fn' (the code that trains)"
        )
    if not isinstance(ref, str) or not _REFERENCE_RE.match(ref):
        raise _invalid("train_function", ref, "must be 'package.module:function'")
    if config.task != "function":
        raise _invalid("task", config.task, "a train_function run is task 'function' (leave task out)")
    for name in ("dataset", "model"):
        value = getattr(config, name)
        if not _NAME_RE.match(value):
            raise _invalid(name, value, "names run files: letters, digits and . _ + -")
    check_directions(config.metrics)
    if not isinstance(config.train_options, dict):
        raise _invalid("train_options", config.train_options, "must be a table")
    try:
        json.dumps(config.train_options, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _invalid("train_options", config.train_options, f"must be JSON-able (run files store it): {e}") from None
    for f in fields(config):
        default = f.default_factory() if callable(f.default_factory) else f.default
        if f.name not in USED_FIELDS and getattr(config, f.name) != default:
            raise _invalid(
                f.name,
                getattr(config, f.name),
                "has no effect on a train_function run (the function trains the run itself); "
                "remove it, or pass it to the function in [train_options]",
            )


def check_directions(metrics: Any) -> None:
    """The TOML's `metrics` table: at least one metric name, each "higher" or "lower"."""
    if not isinstance(metrics, dict) or not metrics:
        raise _invalid(
            "metrics", metrics, 'must name what the function returns, e.g. { accuracy = "higher", loss = "lower" }'
        )
    for name, direction in metrics.items():
        if not isinstance(name, str) or not name:
            raise _invalid("metrics", metrics, f"metric names must be non-empty strings, got {name!r}")
        if direction not in DIRECTIONS:
            raise _invalid(
                "metrics", metrics, f"metric {name!r}: direction must be 'higher' or 'lower', got {direction!r}"
            )


def resolve_train_function(reference: str) -> Callable[..., Any]:
    """The callable `reference` ("package.module:fn") names; ValueError naming it when it cannot be had."""
    module_name, _, attr = reference.partition(":")
    try:
        module = _import(module_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"train_function {reference!r}: module {module_name!r} not found ({e})") from None
    except Exception as e:  # the user's module raised while importing: say so, with the cause
        raise ValueError(
            f"train_function {reference!r}: importing {module_name!r} raised {type(e).__name__}: {e}"
        ) from e
    if not hasattr(module, attr):
        raise ValueError(f"train_function {reference!r}: module {module_name!r} has no attribute {attr!r}")
    fn = getattr(module, attr)
    if not callable(fn):
        raise ValueError(f"train_function {reference!r}: {attr!r} is a {type(fn).__name__}, not callable")
    return fn


def _import(module_name: str) -> Any:
    """import_module, also from the current directory (what `python -m` would see; the `optimlab`
    script's sys.path lacks it). The directory stays on sys.path so worker processes see it too."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if cwd in sys.path or not (e.name and module_name.split(".")[0] == e.name.split(".")[0]):
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


@dataclass
class FunctionResult:
    final: dict[str, float]  # History.final: the returned metrics, in the TOML's order
    diverged_reason: str | None  # which returned value was not finite, else None


def call_train_function(config: Any, seed: int, make_optimizer: MakeOptimizer) -> FunctionResult:
    """Run config.train_function for one run and check what it returns against config.metrics.

    The function's own exceptions propagate (the sweep records them as the run's failure)."""
    fn = resolve_train_function(config.train_function)
    returned = fn(make_optimizer, seed, json.loads(json.dumps(config.train_options)))  # a fresh copy per run
    return check_returned(returned, config.metrics, config.train_function)


def check_returned(returned: Any, metrics: dict[str, str], reference: str) -> FunctionResult:
    """ValueError (the run failed) for a missing, extra or non-numeric value; a NaN/inf value is a divergence."""
    if not isinstance(returned, dict):
        raise ValueError(
            f"train_function {reference!r} returned a {type(returned).__name__}; it must return a dict of {list(metrics)}"
        )
    missing = [m for m in metrics if m not in returned]
    extra = sorted(str(k) for k in returned if k not in metrics)
    if missing or extra:
        raise ValueError(
            f"train_function {reference!r} returned keys {sorted(map(str, returned))}, but the experiment's metrics "
            f"are {list(metrics)}: "
            + "; ".join([f"missing {missing}"] * bool(missing) + [f"not listed {extra}"] * bool(extra))
        )
    final: dict[str, float] = {}
    for name in metrics:
        value = returned[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise ValueError(f"train_function {reference!r} returned {name}={value!r}, not a number")
        final[name] = float(value)
    bad = [f"{name}={v}" for name, v in final.items() if not math.isfinite(v)]
    return FunctionResult(final, f"train_function returned non-finite {', '.join(bad)}" if bad else None)


class FunctionTask(Task):
    """The user's function trains each run (fit calls call_train_function instead of its own loop);
    the task holds what the rest of optimlab asks of a task: its name, checks and thread estimate."""

    name = "function"
    summary = "your own training code: train_function = 'package.module:fn' trains each run, returns its metrics"
    metrics = ()  # per experiment: the TOML's `metrics` table (optimlab.report.markdown.experiment_metrics)
    headline = ""
    curve = ""

    def check(self, config: Any) -> None:
        """The fields (check_function_fields) and the reference itself: imported, found, callable."""
        check_function_fields(config)
        resolve_train_function(config.train_function)

    def prepare(self, config: Any, seed: int, device: Any) -> Any:
        raise TypeError("task 'function' has no data of optimlab's: the train_function loads its own")

    def build_model(self, config: Any, data: Any) -> Any:
        raise TypeError("task 'function' has no model of optimlab's: the train_function builds its own")

    def describe(self, config: Any) -> dict[str, Any]:
        return {"title": f"{config.dataset} / {config.model}", "summary": f"trained by {config.train_function}"}

    def forward_macs(self, config: Any) -> int:
        return 0  # unknown work: one intra-op thread per run (optimlab.experiments.threads)


__all__ = [
    "DIRECTIONS",
    "FunctionResult",
    "FunctionTask",
    "call_train_function",
    "check_directions",
    "check_function_fields",
    "check_returned",
    "resolve_train_function",
]
