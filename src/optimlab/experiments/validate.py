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
            optimizer_info(o.name)
        except ValueError as e:
            raise ConfigError(f"optimizer {o.label!r}: {e}") from None


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
                        create_optimizer(o.name, module.parameters(), **o.hparams)
                    except (ValueError, TypeError) as e:
                        raise ConfigError(f"optimizer {o.label!r} ({o.name}) hparams {o.hparams}: {e}") from None


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
