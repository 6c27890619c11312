"""Key-point regression (paper 004's FKPD row: PreActResNet34 on YouTube Faces key points, test MSE).

Data: optimlab.data.keypoints: "keypoints-folder" (the YouTube Faces key-point CSV + image-folder
layout) or "mnist-keypoints" (the CPU stand-in: 5 points that are a fixed function of real mnist-5k
digits placed by a fixed random affine map; see optimlab.data.keypoints_mnist). Targets are (u, v)
pairs in [-1, 1] of the image. The validation split is a random `val_fraction` of the training
split drawn with the run seed (no classes to stratify by); the test split is never touched.
Model: a registered pre-activation ResNet with 2·K linear outputs. Loss: mean squared error over
the 2·K coordinates (per sample, then averaged over the batch). Metric: test MSE (scikit-learn's
mean_squared_error over every coordinate of every test image), lower is better; the per-epoch curve
(History.train_acc / val_acc / test_acc) is the MSE too. Divergence: the default rule (NaN/Inf, or a
running training loss above diverge_factor x the first batch's).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from optimlab.data import Split, load_dataset
from optimlab.models import create_model
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import (
    Evaluation,
    Runtime,
    StepContext,
    Task,
    TaskData,
    declared_shape,
    random_splits,
    registered_model_macs,
)

MSE = Metric(
    "mse", "MSE", "lower", 0.0, math.inf, headline_title="test MSE"
)  # mean squared error over every test coordinate
KEYPOINT_MODELS = ("preactresnet34", "preactresnet18", "preactresnet10")


def per_sample_mse(output: Tensor, y: Tensor) -> Tensor:
    """[B]: each sample's squared error averaged over its 2·K coordinates."""
    return (output.float() - y.float()).square().mean(dim=1)


class KeypointTask(Task):
    name = "keypoints"
    title = "key-point regression"
    summary = "key-point regression: images -> 2·K coordinates in [-1, 1], PreAct-ResNet, test MSE"
    models = KEYPOINT_MODELS
    metrics: ClassVar[tuple[str, ...]] = ("mse",)
    declared_metrics: ClassVar[tuple[Metric, ...]] = (MSE,)
    headline = "mse"
    curve = "mse"

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        data, (train, val, test) = random_splits(config, seed, device)
        info = {"input_shape": data.input_shape, "num_outputs": data.num_outputs, "dataset_name": data.name}
        return TaskData(train, val, test, 0, [], info)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return create_model(config.model, data.info["num_outputs"], data.info["input_shape"], width=config.width)

    def forward_macs(self, config: Any) -> int:
        shape, outputs = declared_shape(config)
        return registered_model_macs(config, outputs, shape)

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        c, h, w = data.input_shape
        kind = (
            "STAND-IN, not faces: real mnist-5k digits placed by a fixed random affine map, the points a fixed "
            "function of each image (ink centroid, left/right/top/bottom-most ink)"
            if config.dataset == "mnist-keypoints"
            else "key points as annotated"
        )
        return {
            "n_train": int(data.train_y.shape[0]),
            "n_test": int(data.test_y.shape[0]),
            "num_classes": 0,
            "detail": f"{data.num_points} key points per {h}x{w} image, regression; {kind}",
        }

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        per = per_sample_mse(output, y)
        return per.sum() if reduction == "sum" else per.mean()

    def train_step(self, ctx: StepContext, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The default step, with the per-sample errors computed once for the loss and the curve."""
        n = y.shape[0]
        with ctx.runtime.autocast():
            per = per_sample_mse(ctx.forward(ctx.runtime.to_input(x)), y)
            loss = per.mean() if n * ctx.world == ctx.n_global else per.sum() * (ctx.world / ctx.n_global)
        ctx.step("model", loss)
        return loss.detach(), per.detach().sum().double()

    def correct(self, output: Tensor, y: Tensor) -> Tensor:
        # the running training curve: summed per-sample MSE (fit divides by the samples seen)
        return per_sample_mse(output, y).sum().double()

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        model.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(split), batch_size):
                x = runtime.to_input(split.x[start : start + batch_size].to(runtime.device, non_blocking=True))
                with runtime.autocast():
                    outputs.append(model(x).float().cpu())
        predictions = torch.cat(outputs)
        mse = float(per_sample_mse(predictions, split.y.cpu()).double().mean())
        return Evaluation(loss=mse, accuracy=mse, predictions=predictions)

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        from sklearn.metrics import mean_squared_error

        pred = evaluation.predictions.double().numpy()
        true = split.y.cpu().double().numpy()
        if not torch.isfinite(evaluation.predictions).all():
            mse = float("nan")
        else:
            mse = float(mean_squared_error(true.reshape(-1), pred.reshape(-1)))
        return {"mse": mse, "loss": mse}, []


__all__ = ["KEYPOINT_MODELS", "MSE", "KeypointTask", "per_sample_mse"]
