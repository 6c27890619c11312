"""Fréchet distance between feature distributions (FID, Heusel et al. 2017) over pluggable features.

    d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^{1/2}

with μ, Σ the mean and the unbiased (ddof = 1) covariance of each feature set, as pytorch-fid
computes them. Two ways to get tr (Σ₁ Σ₂)^{1/2}:

* "sqrtm": scipy.linalg.sqrtm(Σ₁ Σ₂), the standard recipe (pytorch-fid); when the product is
  near-singular and the root is not finite, ε·I (ε = 1e-6) is added to both covariances, and the
  imaginary part rounding leaves is dropped (an error when it is large).
* "eig": Σ₁ Σ₂ is similar to the symmetric PSD matrix A = Σ₁^{1/2} Σ₂ Σ₁^{1/2}, so the trace is the
  sum of the square roots of A's eigenvalues (negative round-off clipped to 0); stable and real.

The score depends entirely on the feature extractor, so every extractor carries the metric's
name: "FID (Inception features)" is the field's FID only with the Inception-v3 TorchScript weights
(`InceptionFeatures`); a classifier trained on the stand-in's real images gives
"FID (classifier features)" (`ClassifierFeatures`), comparable only between runs that use the
same classifier. Extractors take images in [-1, 1] (a generator's tanh output).

References: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017; pytorch-fid (mseitzer/pytorch-fid, src/pytorch_fid/fid_score.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

SQRTM_EPS = 1e-6
INCEPTION_FILE = "inception-2015-12-05.pt"  # NVIDIA's TorchScript Inception-v3 (StyleGAN2-ADA, clean-fid)
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"


def feature_statistics(features: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], unbiased covariance [D, D]) in float64 of features [N, D] (N >= 2)."""
    f = np.asarray(torch.as_tensor(features).detach().cpu().double() if isinstance(features, Tensor) else features)
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be [N, D] with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or Inf (a diverged generator?)")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "sqrtm") -> float:
    """tr (Σ₁ Σ₂)^{1/2} for symmetric PSD Σ₁, Σ₂ (see the module docstring for the two methods)."""
    if method == "eig":
        r = _sym_sqrt(sigma1)
        w = np.linalg.eigvalsh(r @ sigma2 @ r)
        return float(np.sqrt(np.clip(w, 0.0, None)).sum())
    if method != "sqrtm":
        raise ValueError(f"method must be 'sqrtm' or 'eig', got {method!r}")
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products: handled below
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * SQRTM_EPS
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"sqrtm of Σ₁Σ₂ has a large imaginary part ({np.abs(covmean.imag).max():.3g}); use method='eig'"
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, method: str = "sqrtm"
) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (FID's formula; never negative: round-off is clipped)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    d = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2, method)
    return max(float(d), 0.0)


def fid_from_features(real: np.ndarray | Tensor, fake: np.ndarray | Tensor, method: str = "sqrtm") -> float:
    """FID between two feature sets [N, D] and [M, D]."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake), method=method)


class FeatureExtractor(Protocol):
    metric_name: str  # how tables call the score, e.g. "FID (classifier features)"

    def __call__(self, images: Tensor) -> Tensor:  # images [N, C, H, W] in [-1, 1] -> features [N, D]
        ...


class ClassifierFeatures:
    """The input of a trained classifier's last nn.Linear, as features (images in [-1, 1]).

    mean/std: the classifier's input normalization in [0, 1] pixel units (images are mapped
    x -> ((x + 1) / 2 − mean) / std before the forward pass).
    """

    metric_name = "FID (classifier features)"

    def __init__(self, classifier: nn.Module, mean: float, std: float, batch_size: int = 500) -> None:
        linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("ClassifierFeatures needs a classifier whose last layer is an nn.Linear")
        self.classifier = classifier.eval()
        self.head = linears[-1]
        self.mean, self.std, self.batch_size = float(mean), float(std), int(batch_size)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        captured: list[Tensor] = []
        hook = self.head.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach().double()))
        try:
            for start in range(0, images.shape[0], self.batch_size):
                x = images[start : start + self.batch_size].float()
                self.classifier(((x + 1) / 2 - self.mean) / self.std)
        finally:
            hook.remove()
        return torch.cat(captured).cpu()


class InceptionFeatures:
    """2048-d pool features of NVIDIA's TorchScript Inception-v3 (`inception-2015-12-05.pt`, the
    file StyleGAN2-ADA and clean-fid use), loaded from a local file: nothing is downloaded.

    Grey images are repeated to 3 channels and mapped from [-1, 1] to [0, 255]; the TorchScript
    model resizes to 299×299 itself (`model(x, return_features=True)`).
    """

    metric_name = "FID (Inception features)"

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 100) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(
                f"Inception weights not found: {self.path} (expected NVIDIA's TorchScript {INCEPTION_FILE}, "
                f"from {INCEPTION_URL}; download it elsewhere and copy it there)"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
                self.model = torch.jit.load(str(self.path), map_location=device).eval()
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{self.path} is not a TorchScript model ({exc})") from None
        self.device, self.batch_size = device, int(batch_size)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            x = images[start : start + self.batch_size].float().to(self.device)
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            x = ((x + 1) * 127.5).clamp(0, 255)
            out.append(self.model(x, return_features=True).double().cpu())
        return torch.cat(out)


def fid(extractor: FeatureExtractor, real_images: Tensor, fake_images: Tensor, method: str = "sqrtm") -> float:
    """FID between two image sets in [-1, 1] under `extractor` (call it by extractor.metric_name)."""
    return fid_from_features(extractor(real_images), extractor(fake_images), method)
