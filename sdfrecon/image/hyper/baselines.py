"""What the hypernetwork is compared with: classical interpolation of the observed pixels
(scipy griddata nearest, linear, cubic) and a SIREN fitted to the observed pixels alone (the
image module's network and the shared training loop; with nothing between the observed
pixels to hold it, it overfits them)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sdfrecon.image import data
from sdfrecon.image.config import ImageModelConfig, ImageTrainConfig
from sdfrecon.image.hyper import data as hyper_data
from sdfrecon.image.models import build_model
from sdfrecon.sdf.train import train

SIREN_MODEL = ImageModelConfig(hidden_features=128, hidden_layers=3)
"""The per-image SIREN of the benchmark: the image module's SIREN, 128 wide."""
SIREN_TRAIN = ImageTrainConfig(steps=200, lr=1e-3, warmup_steps=20, progress=False, device="cpu",
                               checkpoint_every=10**9, log_every=10**9)
"""Adam on the observed pixels (all of them, at most 8192 a step), cosine schedule."""


def interpolation(image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """griddata of the observed pixels of ``image`` (H, W): 'nearest', 'linear' or 'cubic'."""
    return np.clip(hyper_data.interpolate(image, mask, method), 0, 1)


def siren_on_observed(image: np.ndarray, mask: np.ndarray, model: ImageModelConfig = SIREN_MODEL,
                      config: ImageTrainConfig = SIREN_TRAIN, batch: int = 8192) -> np.ndarray:
    """A SIREN fitted to the observed pixels of ``image`` (H, W) only, rendered at every pixel."""
    h, w = image.shape
    torch.manual_seed(config.seed)
    network = build_model(model, 1)
    coords_all = torch.from_numpy(data.pixel_coordinates(h, w))
    flat = mask.ravel()
    coords = coords_all[torch.from_numpy(flat)]
    values = torch.from_numpy(image.ravel()[flat].astype(np.float32))[:, None]
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)

    def loss_fn() -> dict[str, torch.Tensor]:
        if len(coords) > batch:
            idx = torch.randint(0, len(coords), (batch,), generator=generator)
            x, y = coords[idx], values[idx]
        else:
            x, y = coords, values
        return {"total": (network(x) - y).square().mean()}

    cfg = dataclasses.replace(config, grad_clip=None)
    train(network, optimizer, loss_fn, cfg, description="siren")
    with torch.no_grad():
        out = torch.cat([network(coords_all[i:i + 16384]) for i in range(0, h * w, 16384)])
    return np.clip(out.numpy().reshape(h, w), 0, 1).astype(np.float32)
