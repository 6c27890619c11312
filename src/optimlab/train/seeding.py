"""Seeding and the random-number state a checkpoint must carry for a bit-identical resume.

One run seed drives everything, through separate streams so they do not share draws:
  * the global torch generator (model initialisation, dropout), seeded with `seed`;
  * Python's `random` and NumPy's global generator, seeded with `seed` (for user code / models);
  * a dedicated CPU torch.Generator for batch order, weighted sampling and augmentation, seeded
    with a value derived from `seed` (SeedSequence), so data order is independent of init draws;
  * the validation split, drawn with `seed` itself (same split for every optimizer at that seed).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

DATA_STREAM = 1  # SeedSequence key of the data-order generator's stream


def derive_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for sub-stream `stream` of run seed `seed` (stable across platforms)."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return int(seed)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (all devices), numpy and random with `seed`; return the data-order generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(derive_seed(seed, DATA_STREAM))
    return generator


def capture_rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every RNG state fit consumes, as tensors / plain Python values (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "data_generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["data_generator"])
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(
        (npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached"])
    )
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
