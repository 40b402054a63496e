"""Completing an image from some of its pixels with a trained hypernetwork: the image (at the
model's size) and its mask -> one generated SIREN, rendered at the model's size (observed
pixels kept as they are) and at any other size (the SIREN is continuous over [-1, 1]^2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sdfrecon.image.hyper.model import HyperSiren


@dataclass
class Completion:
    """completed (S, S) with the observed pixels kept, raw (S, S) the SIREN alone, and the
    SIREN rendered at ``factor`` times the size (factor S, factor S); all in [0, 1]."""

    completed: np.ndarray
    raw: np.ndarray
    upsampled: np.ndarray


def complete_batch(network: HyperSiren, images: np.ndarray, masks: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Completions (N, S, S) of images (N, S, S) in [0, 1] from their pixels where masks
    (N, S, S) are True (kept as they are)."""
    network.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + chunk], dtype=np.float32))
            m = torch.from_numpy(masks[i:i + chunk].astype(np.float32))
            out.append(torch.where(m > 0, x, network(x, m).clamp(0, 1)).numpy())
    return np.concatenate(out)


def complete(network: HyperSiren, image: np.ndarray, mask: np.ndarray, factor: int = 4) -> Completion:
    """Complete ``image`` (S, S) in [0, 1] (S: the model's training size, or any other) from
    its pixels where ``mask`` (S, S) is True."""
    network.eval()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    m = torch.from_numpy(mask.astype(np.float32))[None]
    h, w = image.shape
    with torch.no_grad():
        params = network.generate(x, m)
        raw = network.render(params, h, w)[0].clamp(0, 1).numpy()
        upsampled = network.render(params, factor * h, factor * w)[0].clamp(0, 1).numpy()
    return Completion(np.where(mask, image, raw).astype(np.float32), raw, upsampled)
