"""Check an experiment against the registries before any run starts.

A typo in an optimizer name or hyperparameter should fail in a second with one clear line, not
after thirty worker processes have each raised the same exception. So this builds, in the calling
process, what every run will build: the data set (once per data set), the model and each optimizer
on the model's real parameters (so `wgd-*` and hyperparameter checks see real conv weights).
It also checks what a worker would only find out later: a data folder given to a data set that
takes none, and a device (CUDA, MPS) this machine does not have.
"""

from __future__ import annotations

from optimlab.experiments.config import ConfigError, ExperimentConfig


def check_experiment(config: ExperimentConfig, load_data: bool = True) -> None:
    """Raise ConfigError naming the culprit (dataset, data folder, model, optimizer, hyperparameter)."""
    if config.task != "classification":
        _check_task_experiment(config, load_data)
        return
    from optimlab.data import list_datasets, load_dataset
    from optimlab.models import create_model, list_models
    from optimlab.optim import create_optimizer, optimizer_info

    datasets = {d.name: d for d in list_datasets()}
    models = [m.name for m in list_models()]
    for ds in config.dataset_grid:
        if ds not in datasets:
            raise ConfigError(f"unknown dataset {ds!r}; valid: {sorted(datasets)}")
        if datasets[ds].task != "classification":
            raise ConfigError(
                f"dataset {ds!r} belongs to task {datasets[ds].task!r}, not image classification: "
                f"set task = {datasets[ds].task!r} (--set task={datasets[ds].task})"
            )
    for m in config.model_grid:
        if m not in models:
            raise ConfigError(f"unknown model {m!r}; valid: {models}")
    for o in config.optimizers:
        try:
            optimizer_info(o.name)
        except ValueError as e:
            raise ConfigError(f"optimizer {o.label!r}: {e}") from None
    if config.data_dir is not None and not any(datasets[ds].needs_root for ds in config.dataset_grid):
        names = ", ".join(config.dataset_grid)
        raise ConfigError(
            f"dataset {names!r} is bundled and takes no data folder, got data_dir "
            f"{config.data_dir!r}; drop --data-dir (data_dir) or pick a data set read from disk"
        )
    _check_device(config)
    if not load_data:
        return
    for ds in config.dataset_grid:
        info = datasets[ds]
        root = config.data_dir if info.needs_root else None
        if info.needs_root and config.data_dir is None:
            raise ConfigError(f"dataset {ds!r} needs a data folder: set data_dir (or --data-dir)")
        try:
            splits = load_dataset(ds, root=root, **config.dataset_options)
        except (ValueError, OSError) as e:
            raise ConfigError(f"dataset {ds!r}: {e}") from None
        for m in config.model_grid:
            try:
                model = create_model(
                    m, num_classes=splits.num_classes, input_shape=splits.input_shape, width=config.width
                )
            except ValueError as e:
                raise ConfigError(f"model {m!r} on {ds!r}: {e}") from None
            for o in config.optimizers:
                try:
                    create_optimizer(o.name, model.parameters(), **o.hparams)
                except (ValueError, TypeError) as e:
                    raise ConfigError(f"optimizer {o.label!r} ({o.name}) hparams {o.hparams}: {e}") from None


def _check_task_experiment(config: ExperimentConfig, load_data: bool) -> None:
    """The same checks through the task (optimlab.tasks): its data sets and models, then the data,
    the model and every optimizer built as the first seed's run builds them."""
    if config.train_function is not None:  # the user's own code trains each run
        _check_function_experiment(config)
        return
    import torch

    from optimlab.data import list_datasets
    from optimlab.optim import create_optimizer, optimizer_info
    from optimlab.tasks import get_task

    task = get_task(config.task)
    datasets = {d.name: d for d in list_datasets()}
    for o in config.optimizers:
        try:
            optimizer_info(o.name)
        except ValueError as e:
            raise ConfigError(f"optimizer {o.label!r}: {e}") from None
    for ds in config.dataset_grid:
        for m in config.model_grid:
            try:
                task.check(config.train_config(ds, m, config.optimizers[0]))
            except ValueError as e:
                raise ConfigError(f"task {config.task!r}: {e}") from None
        if datasets[ds].needs_root and config.data_dir is None:
            raise ConfigError(f"dataset {ds!r} needs a data folder: set data_dir (or --data-dir)")
    _check_device(config)
    if not load_data:
        return
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


def _check_function_experiment(config: ExperimentConfig) -> None:
    """The train_function reference resolves to a callable (optimlab.tasks.function), and every optimizer
    builds with its hparams on a probe of a conv and a linear layer (so wgd-* sees a 4-D weight)."""
    import torch

    from optimlab.optim import create_optimizer
    from optimlab.tasks import get_task

    try:
        get_task("function").check(config.runs()[0].config)
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
