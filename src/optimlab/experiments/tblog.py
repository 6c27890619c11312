"""TensorBoard event files for each run of a sweep, beside its JSON (which stays the source of truth).

    out/runs/<run_id>.json        the result
    out/runs/<run_id>/events.*    its TensorBoard events (`tensorboard --logdir out/runs`)

Per epoch (step = 1-based epoch): train/loss, train/accuracy, val/loss, val/accuracy, test/loss,
test/accuracy, lr, time/epoch_s, time/step_ms (mean step time so far). When the run finishes:
hparams (optimizer, label, seed, every scalar hyperparameter, recipe) with the final test and
validation metrics as hparam/test_<metric> and hparam/val_<metric>, so TensorBoard's HPARAMS tab
compares optimizers and seeds. Written live through fit's per-epoch callback, so a running sweep
can be watched. A resumed run hides the events of the epochs it redoes (purge_step); a run that
starts from epoch 1 again starts a fresh folder. Needs the tensorboard package (a dependency).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from optimlab.train.config import History, TrainConfig

SCALARS = (
    ("train/loss", "train_loss"),
    ("train/accuracy", "train_acc"),
    ("val/loss", "val_loss"),
    ("val/accuracy", "val_acc"),
    ("test/loss", "test_loss"),
    ("test/accuracy", "test_acc"),
    ("lr", "lr"),
    ("time/epoch_s", "epoch_time_s"),
)
RECIPE_KEYS = ("dataset", "model", "width", "epochs", "batch_size", "schedule", "weight_decay_mode")


def events_dir(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / "runs" / run_id


def hparams_of(label: str, seed: int, config: TrainConfig) -> dict[str, Any]:
    """What TensorBoard's HPARAMS tab shows for a run: int/float/str/bool values only."""
    hp: dict[str, Any] = {"optimizer": config.optimizer, "label": label, "seed": seed}
    for key, value in sorted(config.hparams.items()):
        hp[f"hp.{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    for key in RECIPE_KEYS:
        value = getattr(config, key, None)
        if value is not None:
            hp[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return hp


class RunLogger:
    """fit's callback for one run: logs each epoch as it ends; finish(history) adds the hparams."""

    def __init__(self, out_dir: str | Path, run_id: str, label: str, seed: int, config: TrainConfig) -> None:
        self.dir = events_dir(out_dir, run_id)
        self.label, self.seed, self.config = label, seed, config
        self._writer: Any = None

    def _open(self, first_epoch: int) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        if first_epoch <= 1:
            shutil.rmtree(self.dir, ignore_errors=True)  # an earlier attempt from scratch: start clean
        self._writer = SummaryWriter(str(self.dir), purge_step=first_epoch if first_epoch > 1 else None)
        return self._writer

    def __call__(self, epoch: int, history: History) -> None:
        writer = self._writer or self._open(epoch)
        i = epoch - 1
        for tag, name in SCALARS:
            values = getattr(history, name)
            if i < len(values):
                writer.add_scalar(tag, values[i], epoch)
        if math.isfinite(history.step_time_s):
            writer.add_scalar("time/step_ms", 1e3 * history.step_time_s, epoch)
        writer.flush()

    def finish(self, history: History) -> None:
        """Write the hparams with the final metrics (NaN for a diverged run) and close."""
        writer = self._writer or self._open(history.epochs_run + 1)
        metrics = {f"hparam/test_{k}": float(v) for k, v in history.final.items()}
        metrics.update({f"hparam/val_{k}": float(v) for k, v in history.final_val.items()})
        writer.add_hparams(
            hparams_of(self.label, self.seed, self.config), metrics, run_name=".", global_step=history.epochs_run
        )
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
