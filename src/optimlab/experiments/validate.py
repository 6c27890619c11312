"""Check an experiment against the registries before any run starts.

A typo in an optimizer name or hyperparameter should fail in a second with one clear line, not
after thirty worker processes have each raised the same exception. So this builds, in the calling
process, what every run will build: the data set (once per data set), the model and each optimizer
on the model's real parameters (so `wgd-*` and hyperparameter checks see real conv weights).
It also checks what a worker would only find out later: a data folder given to a data set that
takes none, and a device (CUDA, MPS) this machine does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optimlab.experiments.config import ConfigError, ExperimentConfig
from optimlab.plugins import is_reference

if TYPE_CHECKING:
    from optimlab.tasks import Task


def check_experiment(config: ExperimentConfig, load_data: bool = True) -> None:
    """Raise ConfigError naming the culprit (dataset, data folder, model, optimizer, hyperparameter).

    The names through the run's task (optimlab.tasks: its data sets and models), then, with
    load_data, the data, the model and every optimizer built as the first seed's run builds them."""
    from optimlab.data import list_datasets
    from optimlab.tasks import get_task

    if config.train_function is not None:  # the user's own code trains each run: no data or model of ours
        _check_function_experiment(config)
        return
    task = get_task(config.task)
    datasets = {d.name: d for d in list_datasets()} | _referenced_datasets(config)
    _check_optimizer_names(config)
    for ds in config.dataset_grid:
        for m in config.model_grid:
            try:
                task.check(config.train_config(ds, m, config.optimizers[0]))
            except ValueError as e:
                raise ConfigError(f"task {config.task!r}: {e}") from None
        if datasets[ds].needs_root and config.data_dir is None:
            raise ConfigError(f"dataset {ds!r} needs a data folder: set data_dir (or --data-dir)")
    if config.data_dir is not None and not any(datasets[ds].needs_root for ds in config.dataset_grid):
        names = ", ".join(config.dataset_grid)
        raise ConfigError(
            f"dataset {names!r} is bundled and takes no data folder, got data_dir "
            f"{config.data_dir!r}; drop --data-dir (data_dir) or pick a data set read from disk"
        )
    _check_device(config)
    if load_data:
        _build_first_runs(config, task)


def _check_optimizer_names(config: ExperimentConfig) -> None:
    from optimlab.optim import optimizer_info

    for o in config.optimizers:
        try:
            info = optimizer_info(o.name)
        except ValueError as e:
            raise ConfigError(f"optimizer {o.label!r}: {e}") from None
        _check_hparam_types(o.label, o.hparams, _declared_defaults(info))


def _declared_defaults(info: Any) -> dict[str, Any]:
    """Each hyperparameter's default: the registry's, else the class signature's (torch's Adam: betas, eps)."""
    import inspect

    try:
        params = list(inspect.signature(info.cls).parameters.values())
    except (TypeError, ValueError):  # a callable without a readable signature
        params = []
    declared = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {**declared, **info.defaults}


def _kind(value: Any) -> str | None:
    """The kind of a hyperparameter value a default implies: "a number", "true or false", "a list" or "text"."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "text"
    return None  # None or an object: the optimizer's own checks decide


def _check_hparam_types(label: str, hparams: dict[str, Any], defaults: dict[str, Any]) -> None:
    """ConfigError naming the hyperparameter whose value is not of its default's kind (adam:lr=fast),
    before the optimizer's own comparisons leak "'<=' not supported between 'float' and 'str'"."""
    for key, value in hparams.items():
        want = _kind(defaults.get(key))
        if want is not None and _kind(value) != want and not (want == "a number" and _kind(value) is None):
            raise ConfigError(
                f"optimizer {label!r}: hyperparameter {key}={value!r} must be {want} "
                f"(default {defaults[key]!r}), got {type(value).__name__}"
            )


def _build_first_runs(config: ExperimentConfig, task: Task) -> None:
    """Per data set: its data as the first seed's run prepares it, then each model and, on every role's
    real parameters (so `wgd-*` and hyperparameter checks see real conv weights), each optimizer."""
    import torch

    from optimlab.optim import create_optimizer

    cpu = torch.device("cpu")
    for ds in config.dataset_grid:
        run = config.train_config(ds, config.model_grid[0], config.optimizers[0])
        try:
            data = task.prepare(run.replace(device="cpu"), config.seeds[0], cpu)
        except (ValueError, OSError) as e:
            raise ConfigError(f"dataset {ds!r}: {e}") from None
        for m in config.model_grid:
            try:
                model = task.build_model(run.replace(model=m), data)
            except ValueError as e:
                raise ConfigError(f"model {m!r} on {ds!r}: {e}") from None
            for o in config.optimizers:
                for module in task.roles(model).values():
                    try:
                        built = create_optimizer(o.name, module.parameters(), **o.hparams)
                    except (ValueError, TypeError) as e:
                        raise ConfigError(f"optimizer {o.label!r} ({o.name}) hparams {o.hparams}: {e}") from None
                    _warn_if_wgd_centres_nothing(built, o.label, m)


def _warn_if_wgd_centres_nothing(optimizer: Any, label: str, model: str) -> None:
    """A WGD optimizer on a model with no weight it centres (e.g. an MLP: no conv weight, linear
    weights off by default) is its base step for step: say so once, before the sweep."""
    import warnings

    from optimlab.optim import WGD, wgd_eligible

    if not isinstance(optimizer, WGD):
        return
    groups = [g for g in optimizer.param_groups if g["wgd_mode"] != "none"]  # "none": the base on purpose
    if groups and not any(
        wgd_eligible(p, g["wgd_min_dim"], g["wgd_include_linear"]) for g in groups for p in g["params"]
    ):
        warnings.warn(
            f"optimizer {label!r}: model {model!r} has no weight WGD centres (none with >= "
            f"{groups[0]['wgd_min_dim']} dims, linear weights off), so it runs exactly as its base; "
            "set wgd_include_linear = true or wgd_min_dim = 2 to centre linear weights",
            stacklevel=2,
        )


def _referenced_datasets(config: ExperimentConfig) -> dict[str, Any]:
    """The entries of data sets named by a package.module:loader reference (optimlab.plugins)."""
    from optimlab.data import dataset_info

    try:
        return {ds: dataset_info(ds) for ds in config.dataset_grid if is_reference(ds)}
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _check_function_experiment(config: ExperimentConfig) -> None:
    """The train_function reference resolves to a callable (optimlab.tasks.function), and every optimizer
    builds with its hparams on a probe of a conv and a linear layer (so wgd-* sees a 4-D weight)."""
    import torch

    from optimlab.optim import create_optimizer
    from optimlab.tasks import get_task

    try:
        get_task(config.task).check(config.runs()[0].config)
    except ValueError as e:
        raise ConfigError(str(e).replace("TrainConfig.", "", 1)) from None
    _check_optimizer_names(config)  # names, and hyperparameter kinds before the optimizers' own checks
    probe = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    for o in config.optimizers:
        try:
            create_optimizer(o.name, probe.parameters(), **o.hparams)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"optimizer {o.label!r} ({o.name}) hparams {o.hparams}: {e}") from None


def _check_device(config: ExperimentConfig) -> None:
    from optimlab.train.accel import resolve_device

    run = config.runs()[0]
    try:
        resolve_device(run.config)
    except ValueError as e:
        raise ConfigError(str(e).replace("TrainConfig.", "", 1)) from None
