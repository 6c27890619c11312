"""Image generation (paper 004's IG row: a GAN on 7,049 sneaker images, FID): a DCGAN, two optimizers.

Data: real images only (labels are used for nothing but the feature classifier): "mnist5k" (the CPU
stand-in, 28×28 digits) or "imagefolder" (e.g. the sneakers, at an image_size that is a multiple of
4). Pixels are mapped to [-1, 1] (the generator's tanh range) by the data set's own [0, 1] scale,
not the per-channel normalization the classifiers use. The validation split is carved stratified
with the run seed; the test split is never touched.

Model "dcgan": optimlab.models.dcgan's generator G and discriminator D, each with its own optimizer
(roles "generator" and "discriminator", the experiment's optimizer and hyperparameters for both,
both in the checkpoint). One training step (PyTorch's DCGAN example): z ~ N(0, I) from the run's
global torch stream; D step on BCE(D(x), 1) + BCE(D(G(z)), 0) with G(z) detached; then G step on the
non-saturating BCE(D(G(z)), 1) against the updated D. The recorded training loss is the sum of the
two; the training curve (History.train_acc) is D's accuracy on the batch's real and fake images.

Metric: "fid_classifier", FID (classifier features): the Fréchet distance between the features of
the split's real images and of as many generated images (fixed noise, seed EVAL_NOISE_SEED, so every
evaluation of every run uses the same z), where the features are the 32-d penultimate layer of a small
CNN trained on the data set's real training images (optimlab.train.fid_classifier; the same network
for every run). It is NOT Inception FID and is not comparable with the paper's figures. With
dataset_options.inception_weights = <path to inception-2015-12-05.pt> the task also reports "fid",
FID over Inception-v3 features (the field's FID). Divergence: a NaN/Inf loss only (GAN losses
legitimately grow when one player wins).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import Split, load_dataset, sample_shape, stratified_split
from optimlab.models import create_model
from optimlab.models.dcgan import DCGAN
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import Evaluation, Runtime, StepContext, Task, TaskData, conv_linear_macs
from optimlab.tasks.fid import INCEPTION_FILE, FeatureExtractor, InceptionFeatures, feature_statistics, frechet_distance
from optimlab.tasks.fid_classifier import train_feature_classifier

GAN_DATASETS = ("mnist5k", "imagefolder")  # image classification's sets whose images it learns to generate
# the Frechet distance between features of real and generated images: of Inception-v3 (with
# dataset_options.inception_weights), and of a small classifier (the CPU scale); verdicts name them by title
FID = Metric("fid", "FID (Inception features)", "lower", 0.0, math.inf, headline_title="FID", title_in_claims=True)
FID_CLASSIFIER = Metric("fid_classifier", "FID (classifier features)", "lower", 0.0, math.inf, title_in_claims=True)
EVAL_NOISE_SEED = 20260  # the fixed z of every evaluation
TASK_OPTIONS = ("inception_weights",)  # dataset_options the task itself takes (not the loader's)
_REAL_STATS: dict[tuple[int, str], tuple[Any, Any]] = {}  # (extractor id, sha256 of the images) -> (mu, sigma)


def _real_statistics(extractor: FeatureExtractor, images: Tensor) -> tuple[Any, Any]:
    """The feature statistics of a real split, computed once per extractor and split (per process)."""
    import hashlib

    key = (id(extractor), hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest())
    if key not in _REAL_STATS:
        if len(_REAL_STATS) > 16:
            _REAL_STATS.clear()
        _REAL_STATS[key] = feature_statistics(extractor(images.cpu()))
    return _REAL_STATS[key]


def _to_unit_range(split: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """Undo the loader's per-channel normalization and map [0, 1] pixels to [-1, 1]."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((split.x * s + m) * 2 - 1).clamp(-1, 1).contiguous()


class GanTask(Task):
    name = "gan"
    title = "image generation"
    summary = "image generation: DCGAN, one optimizer each for generator and discriminator, FID"
    also_trains_on = GAN_DATASETS
    models = ("dcgan",)
    metrics = ("fid_classifier",)
    declared_metrics = (FID_CLASSIFIER, FID)
    headline = "fid_classifier"
    curve = "fid_classifier"
    task_options = TASK_OPTIONS  # dataset_options keys this task reads itself (not the loader's)

    def check(self, config: Any) -> None:
        super().check(config)
        path = config.dataset_options.get("inception_weights")
        if path is not None and not Path(path).expanduser().is_file():
            raise ValueError(
                f"dataset_options.inception_weights: {path} not found (NVIDIA's TorchScript {INCEPTION_FILE})"
            )

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        options = {k: v for k, v in config.dataset_options.items() if k not in TASK_OPTIONS}
        data = load_dataset(config.dataset, config.data_dir, **options)
        full = Split(_to_unit_range(data.train, data.mean, data.std), data.train.y.clone())
        test = Split(_to_unit_range(data.test, data.mean, data.std), data.test.y.clone())
        train, val = stratified_split(full, config.val_fraction, seed=seed)
        if data.num_classes < 2:
            raise ValueError(
                f"{config.dataset} at {config.data_dir}: FID (classifier features) needs at least 2 classes "
                "(image sub-folders) to train its feature classifier, found 1"
            )
        # the same extractor for every run: trained on the data set's whole training split
        extractor = train_feature_classifier(full.x, full.y, test.x, test.y, data.num_classes)
        info: dict[str, Any] = {
            "input_shape": data.input_shape,
            "features": extractor.features,
            "feature_classifier_accuracy": extractor.test_accuracy,
        }
        path = config.dataset_options.get("inception_weights")
        if path is not None:
            info["inception"] = InceptionFeatures(path, device=str(device))
        device = torch.device(device)
        if device.type != "cpu" and config.data_on_device:
            train, val, test = (s.to(device) for s in (train, val, test))
        return TaskData(train, val, test, data.num_classes, list(data.class_names), info)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        model = create_model(config.model, 1, data.info["input_shape"], width=config.width)
        assert isinstance(model, DCGAN)
        # a plain attribute (not submodules): outside the state dict and the optimizers
        model.fid_extractors = {"fid_classifier": data.info["features"]}
        if "inception" in data.info:
            model.fid_extractors["fid"] = data.info["inception"]
        return model

    def forward_macs(self, config: Any) -> int:
        """One sample's generator pass plus three discriminator passes (real, fake for D, fake for G)."""
        declared = sample_shape(config.dataset, config.dataset_options)
        assert declared is not None, f"{config.dataset}: every GAN data set declares its input_shape"
        shape = declared.input_shape
        with torch.device("meta"):
            gan = create_model(config.model, 1, shape, width=config.width)
        assert isinstance(gan, DCGAN)
        return conv_linear_macs(gan.generator, (gan.latent_dim,)) + 3 * conv_linear_macs(gan.discriminator, shape)

    def describe(self, config: Any) -> dict[str, Any]:
        options = {k: v for k, v in config.dataset_options.items() if k not in TASK_OPTIONS}
        data = load_dataset(config.dataset, config.data_dir, **options)
        c, h, w = data.input_shape
        features = "FID (classifier features)" + (
            " and FID (Inception features)" if "inception_weights" in config.dataset_options else ""
        )
        return {
            "n_train": len(data.train),
            "n_test": len(data.test),
            "num_classes": data.num_classes,
            "detail": f"{c}x{h}x{w} real images to generate (labels used only by the FID classifier); {features}"
            + (" (STAND-IN: handwritten digits, not the paper's sneakers)" if config.dataset == "mnist5k" else ""),
        }

    def roles(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"generator": model.generator, "discriminator": model.discriminator}  # type: ignore[dict-item]

    def train_step(self, ctx: StepContext, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        gan: Any = ctx.forward
        gan = getattr(gan, "_orig_mod", gan)  # torch.compile's wrapper
        gan = getattr(gan, "module", gan)  # DDP's wrapper: the plain model holds both networks
        n = x.shape[0]
        z = torch.randn(n, gan.latent_dim, device=x.device)
        ones, zeros = torch.ones(n, device=x.device), torch.zeros(n, device=x.device)
        with ctx.runtime.autocast():
            fake = gan.generator(z)
            d_real = gan.discriminator(x)
            d_fake = gan.discriminator(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(
                d_fake, zeros
            )
        ctx.step("discriminator", d_loss)
        with ctx.runtime.autocast():
            g_loss = F.binary_cross_entropy_with_logits(gan.discriminator(fake), ones)
        ctx.step("generator", g_loss)
        right = ((d_real.detach() > 0).sum() + (d_fake.detach() <= 0).sum()).double() / 2
        return (d_loss + g_loss).detach(), right

    def divergence(self, loss: float, initial: float | None, factor: float | None) -> str | None:
        if not math.isfinite(loss):
            return f"non-finite training loss ({loss})"
        return None

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        assert isinstance(model, DCGAN)
        gan = model
        model.eval()
        n = len(split)
        z = torch.randn(n, gan.latent_dim, generator=torch.Generator().manual_seed(EVAL_NOISE_SEED))
        fakes, logits_fake, logits_real = [], [], []
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                zb = z[start : start + batch_size].to(runtime.device)
                real = split.x[start : start + batch_size].to(runtime.device)
                fake = gan.generator(zb)
                fakes.append(fake.float().cpu())
                logits_fake.append(gan.discriminator(fake).float().cpu())
                logits_real.append(gan.discriminator(real).float().cpu())
        fake_images = torch.cat(fakes)
        lf, lr = torch.cat(logits_fake), torch.cat(logits_real)
        d_loss = float(
            F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
            + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        )
        scores = {}
        for name, extractor in gan.fid_extractors.items():
            if not torch.isfinite(fake_images).all():
                scores[name] = float("nan")
            else:
                real_stats = _real_statistics(extractor, split.x)
                scores[name] = frechet_distance(*real_stats, *feature_statistics(extractor(fake_images)))
        # scores: [FID (classifier features), FID (Inception features) or NaN] for final_metrics
        both = [scores["fid_classifier"], scores.get("fid", float("nan"))]
        return Evaluation(d_loss, scores["fid_classifier"], lf, torch.tensor(both, dtype=torch.float64))

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        assert evaluation.scores is not None
        out = {"fid_classifier": float(evaluation.scores[0]), "loss": evaluation.loss}
        if "inception" in data.info:
            out["fid"] = float(evaluation.scores[1])
        return out, []


__all__ = ["EVAL_NOISE_SEED", "FID", "FID_CLASSIFIER", "GAN_DATASETS", "GanTask"]
