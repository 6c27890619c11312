"""An experiment: one training recipe run for several optimizers x seeds (x models x datasets).

ExperimentConfig is written in TOML (see src/optimlab/configs/default.toml) and expands into the
grid of runs (RunSpec: run_id, label, TrainConfig, seed) that the sweep runs. Loading checks every key and value and
names the file and the culprit; registry names (optimizers, models, datasets) are checked later by
`optimlab.experiments.validate.check_registries`, which needs torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.stats.margins import check_margin
from optimlab.train.config import TrainConfig, with_nulls, without_default_task

# Labels become parts of file names (runs/<dataset>-<model>-<label>-s<seed>.json).
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class ConfigError(ValueError):
    """A bad experiment configuration; the message names the file (if any), key and value."""


@dataclass(frozen=True)
class OptimizerSpec:
    name: str  # registry name, e.g. "sgdm-ema" (passed to create_optimizer)
    label: str  # how tables, plots and run ids call it; unique in an experiment; defaults to name
    hparams: dict[str, Any] = field(default_factory=dict)  # lr, beta, momentum, ... (registry fills the rest)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "hparams": dict(self.hparams)}


@dataclass(frozen=True)
class RunSpec:
    run_id: str  # dataset-model-label-s<seed>: names the result file
    label: str  # the optimizer's label
    config: TrainConfig
    seed: int


# Every TrainConfig field except the per-optimizer ones is an experiment field of the same name,
# type and default: the TOML can set any training option (amp, compile, ...), and a field added to
# TrainConfig appears here by itself. TrainConfig validates them (ExperimentConfig._check builds one).
PER_OPTIMIZER_FIELDS = ("optimizer", "hparams")  # come from each [[optimizers]] table


def _template_fields() -> list[tuple[str, Any, Any]]:
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in PER_OPTIMIZER_FIELDS:
            continue
        default = (
            field(default_factory=f.default_factory)
            if f.default_factory is not dataclasses.MISSING
            else field(default=f.default)
        )
        out.append((f.name, f.type, default))
    return out


TrainTemplate = dataclasses.make_dataclass("TrainTemplate", _template_fields(), frozen=True)
TrainTemplate.__module__ = __name__
TrainTemplate.__doc__ = "The TrainConfig fields an experiment shares across its runs (see train/config.py)."


@dataclass(frozen=True)
class ExperimentConfig(TrainTemplate):  # type: ignore[misc, valid-type]
    """The training recipe (every TrainConfig field but optimizer/hparams, same defaults) plus:"""

    name: str = "compare"  # names the default output folder runs/compare-<name>
    optimizers: tuple[OptimizerSpec, ...] = ()  # the thing being compared
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # same seeds for every optimizer -> paired statistics
    baseline: str | None = None  # label that paired statistics compare against; None = first optimizer
    models: tuple[str, ...] = ()  # optional grid over models (overrides `model`)
    datasets: tuple[str, ...] = ()  # optional grid over datasets (overrides `dataset`)
    # metric -> equivalence margin: adds the decision "equivalent (within ±m)" on that metric, inside the
    # same Holm budget (optimlab.stats.margins); stated before the runs, like the baseline
    margins: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self)

    @property
    def baseline_label(self) -> str:
        return self.baseline if self.baseline is not None else self.optimizers[0].label

    @property
    def dataset_grid(self) -> tuple[str, ...]:
        return self.datasets or (self.dataset,)

    @property
    def model_grid(self) -> tuple[str, ...]:
        return self.models or (self.model,)

    def train_config(self, dataset: str, model: str, opt: OptimizerSpec) -> TrainConfig:
        """The TrainConfig of one grid cell (every shared field copied from this experiment)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(self, f.name)}
        shared.update(
            dataset=dataset,
            model=model,
            optimizer=opt.name,
            hparams=dict(opt.hparams),
            dataset_options=dict(self.dataset_options),
        )
        if len(self.dataset_grid) > 1 and _is_bundled(dataset):
            shared["data_dir"] = None  # a grid's data_dir is for the data sets read from disk
        if not _has_multistep(opt.name):
            shared["switch_epoch"] = None  # only TM-SGD runs carry (and act on) the switch
        return TrainConfig(**shared)

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, datasets x models x optimizers x seeds, in that nesting order."""
        out: list[RunSpec] = []
        for dataset in self.dataset_grid:
            for model in self.model_grid:
                for opt in self.optimizers:
                    config = self.train_config(dataset, model, opt)
                    out.extend(RunSpec(run_id(dataset, model, opt.label, s), opt.label, config, s) for s in self.seeds)
        return out

    def replace(self, **changes: Any) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = without_default_task(dataclasses.asdict(self))  # "task" only when not classification
        d["optimizers"] = [o.to_dict() for o in self.optimizers]
        for key in ("seeds", "models", "datasets"):
            d[key] = list(d[key])
        if not d["margins"]:
            del d["margins"]  # written only when stated, so earlier experiment files read the same
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> ExperimentConfig:
        """Build from a TOML/JSON-style dict; ConfigError naming `source`, the key and the value."""
        where = f"{source}: " if source is not None else ""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ConfigError(f"{where}unknown key(s) {unknown}; valid keys: {sorted(valid)}")
        kw = with_nulls(d)  # switch_epoch = "none" and the like: TOML has no null
        if "train_function" in kw:  # the user's own code trains each run (optimlab.tasks.function)
            _function_experiment(kw, where)
        if "optimizers" in kw:
            kw["optimizers"] = tuple(
                _optimizer_spec(o, i, where) for i, o in enumerate(_as_list(kw, "optimizers", where))
            )
        if "seeds" in kw:
            try:
                kw["seeds"] = parse_seeds(kw["seeds"])
            except ConfigError as e:
                raise ConfigError(f"{where}{e}") from None
        for key in ("models", "datasets"):
            if key in kw:
                kw[key] = tuple(_as_list(kw, key, where))
        try:
            return cls(**kw)
        except ConfigError as e:
            raise ConfigError(f"{where}{e}") from None


def _function_experiment(kw: dict[str, Any], where: str) -> None:
    """A train_function experiment is task "function" and names its data and model itself (they
    name run files and report sections; optimlab's defaults, digits and cnn, would mislabel it)."""
    kw.setdefault("task", "function")
    for key in ("dataset", "model"):
        if key not in kw and f"{key}s" not in kw:
            raise ConfigError(
                f"{where}a train_function experiment names its {key} (run files and the report use it): "
                f'set {key} = "<name>"'
            )


def _has_multistep(optimizer: str) -> bool:
    """Whether the optimizer has a multi-step phase that switch_epoch starts (TM-SGD and WGD on it)."""
    from optimlab.optim import optimizer_info

    try:
        return hasattr(optimizer_info(optimizer).cls, "start_multistep")
    except ValueError:  # unknown name: check_experiment reports it
        return True


def _is_bundled(dataset: str) -> bool:
    from optimlab.data import list_datasets

    return any(d.name == dataset and not d.needs_root for d in list_datasets())


def run_id(dataset: str, model: str, label: str, seed: int) -> str:
    return f"{dataset}-{model}-{label}-s{seed}".replace(":", ".")  # references name files without ':'


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """Read an ExperimentConfig from a TOML (or the sweep's own experiment.json) file.

    A TOML's relative `data_dir` (and `~`) is resolved against the TOML's own folder, so the file
    means the same from any working directory, and the absolute path is what the runs record."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        d = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from None
    if path.suffix != ".json" and isinstance(d.get("data_dir"), str):
        d["data_dir"] = absolute_data_dir(d["data_dir"], base=path.parent)
    return ExperimentConfig.from_dict(d, source=path)


def absolute_data_dir(data_dir: str, base: str | Path = ".") -> str:
    """`data_dir` as an absolute path: `~` expanded, a relative path taken from `base` (a TOML's folder;
    the working directory for --data-dir); normalised, symbolic links kept as written."""
    return os.path.normpath(Path(base).absolute() / Path(data_dir).expanduser())


def parse_seeds(value: Any, name: str = "seeds") -> tuple[int, ...]:
    """Seeds in optimlab's one dialect, the same in a TOML file, --seeds, --tune-seeds and tune():

    a count n (seeds 0..n-1): `5` or "5"; a list of distinct ints >= 0: `[0, 1, 7]` or "0,1,7"
    (one explicit seed: "7,"); an inclusive range as text: "1000-1002". ConfigError naming `name`.
    """
    return _seeds(_seeds_from_text(value, name) if isinstance(value, str) else value, name)


# ---------------------------------------------------------------------------------------------
# checks


def _as_list(d: dict[str, Any], key: str, where: str) -> list[Any]:
    v = d[key]
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"{where}{key!r} must be a list, got {v!r}")
    return list(v)


def _seeds_from_text(text: str, name: str) -> int | list[int]:
    """'5' -> 5 (a count); '0,1,7' -> [0, 1, 7]; '1000-1002' -> [1000, 1001, 1002]."""
    raw = text.strip()
    low, dash, high = raw.partition("-")
    try:
        if "," in raw:
            return [int(s) for s in raw.split(",") if s.strip()]
        if not (dash and low.strip()):  # "5" (or "-5", which the count check refuses)
            return int(raw)
        first, last = int(low), int(high)
    except ValueError:
        raise ConfigError(
            f"{name!r} must be a count (5), a comma list (0,1,7) or a range (1000-1002), got {text!r}"
        ) from None
    if last < first:
        raise ConfigError(f"{name!r} range {text!r} runs backwards; give first-last, e.g. 1000-1002")
    return list(range(first, last + 1))


def _seeds(v: Any, name: str) -> tuple[int, ...]:
    if isinstance(v, bool):
        raise ConfigError(f"{name!r} must be a count or a list of ints, got {v!r}")
    if isinstance(v, int):
        if v < 1:
            raise ConfigError(f"{name!r} count must be >= 1, got {v}")
        return tuple(range(v))
    if isinstance(v, (list, tuple)) and v and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v):
        if len(set(v)) != len(v):
            raise ConfigError(f"{name!r} has duplicates: {list(v)}")
        return tuple(v)
    raise ConfigError(f"{name!r} must be a count >= 1 or a non-empty list of distinct ints >= 0, got {v!r}")


def _optimizer_spec(o: Any, i: int, where: str) -> OptimizerSpec:
    if isinstance(o, OptimizerSpec):
        return o
    if isinstance(o, str):
        o = {"name": o}
    if not isinstance(o, dict):
        raise ConfigError(f"{where}optimizers[{i}] must be a table {{name, label, hparams}}, got {o!r}")
    unknown = sorted(set(o) - {"name", "label", "hparams"})
    if unknown:
        raise ConfigError(f"{where}optimizers[{i}]: unknown key(s) {unknown}; valid: ['hparams', 'label', 'name']")
    name = o.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}optimizers[{i}] needs a 'name' (string), got {name!r}")
    hparams = o.get("hparams", {})
    if not isinstance(hparams, dict):
        raise ConfigError(f"{where}optimizers[{i}] ({name}): 'hparams' must be a table, got {hparams!r}")
    # a reference package.module:attr labels itself package.module.attr (labels name files)
    return OptimizerSpec(name=name, label=o.get("label", name.replace(":", ".")), hparams=dict(hparams))


_TYPES: dict[str, tuple[type, ...]] = {  # the experiment's own fields; TrainConfig validates every training field
    "name": (str,),
    "baseline": (str, type(None)),
}


def _check_margins(margins: Any) -> None:
    if not isinstance(margins, dict):
        raise ConfigError(f"'margins' must be a table of metric = margin, got {margins!r}")
    for metric, m in margins.items():
        try:
            check_margin(m, f"margins.{metric}")
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _check(c: ExperimentConfig) -> None:
    """Field types and ranges; raises ConfigError naming the key and the bad value."""
    for key, types in _TYPES.items():
        v = getattr(c, key)
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ConfigError(f"{key!r} must be {want}, got {v!r}")
    if not c.optimizers:
        raise ConfigError("'optimizers' is empty: list at least one [[optimizers]] table")
    labels = [o.label for o in c.optimizers]
    for o in c.optimizers:
        if not isinstance(o.label, str) or not _LABEL_RE.match(o.label):
            raise ConfigError(f"optimizer label {o.label!r} must be letters, digits and . _ + - (it names files)")
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise ConfigError(f"optimizer label(s) {dupes} appear twice; give each entry a distinct 'label'")
    if c.baseline is not None and c.baseline not in labels:
        raise ConfigError(f"'baseline' {c.baseline!r} is not one of the optimizer labels {labels}")
    _check_margins(c.margins)
    if not c.seeds or not all(isinstance(s, int) for s in c.seeds):
        raise ConfigError(f"'seeds' must be a non-empty tuple of ints, got {c.seeds!r}")
    for key in ("models", "datasets"):
        v = getattr(c, key)
        if not all(isinstance(s, str) and s for s in v):
            raise ConfigError(f"{key!r} must be a list of names, got {list(v)!r}")
        if len(set(v)) != len(v):
            raise ConfigError(f"{key!r} has duplicates: {list(v)}")
    try:  # whatever TrainConfig itself rejects (e.g. warmup_epochs > epochs, amp = "fp8")
        c.train_config(c.dataset_grid[0], c.model_grid[0], c.optimizers[0])
    except ValueError as e:
        raise ConfigError(str(e).replace("TrainConfig.", "", 1)) from None
