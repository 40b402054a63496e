"""Scoring an image fit: PSNR and SSIM against the reference, and the least-squares offset
(a constant, or a constant and a linear term) that a fit from derivatives cannot know."""

from __future__ import annotations

import math

import numpy as np

OFFSET_DEGREE: dict[str, int | None] = {"pixels": None, "gradient": 0, "laplacian": 1}
"""What a target leaves undetermined and is fitted by least squares: nothing, a constant,
or a constant and a linear term a + b x + c y (per channel)."""
OFFSET_NOTE = {
    "pixels": "fitted to the pixels directly; no offset fitted",
    "gradient": "fitted to the gradient, which fixes the image only up to a constant: the "
                "constant (per channel) was fitted by least squares against the reference "
                "before PSNR and SSIM were computed",
    "laplacian": "fitted to the Laplacian, which fixes the image only up to a harmonic "
                 "function: a constant and a linear term a + b x + c y (per channel) were "
                 "fitted by least squares against the reference before PSNR and SSIM were computed",
}


def offset_basis(coords: np.ndarray, degree: int) -> np.ndarray:
    """(N, 2) -> (N, 3) [1, x, y] for degree 1, or (N, 3) [1, 0, 0] for degree 0."""
    basis = np.zeros((len(coords), 3))
    basis[:, 0] = 1.0
    if degree >= 1:
        basis[:, 1:] = coords
    return basis


def offset_field(coords: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """a + b x + c y per channel at coords (N, 2) for offset (C, 3) -> (N, C)."""
    return offset_basis(coords, 1) @ np.asarray(offset, dtype=np.float64).T


def fit_offset(pred: np.ndarray, reference: np.ndarray, coords: np.ndarray,
               degree: int | None) -> np.ndarray:
    """Least-squares offset (C, 3) added to pred (N, C) to best match reference (N, C):
    none (degree None), a constant (0) or a constant and a linear term (1), per channel."""
    channels = pred.shape[1]
    offset = np.zeros((channels, 3))
    if degree is None:
        return offset
    basis = offset_basis(coords, degree)[:, : 1 + 2 * degree]
    residual = np.asarray(reference, dtype=np.float64) - pred
    coef, *_ = np.linalg.lstsq(basis, residual, rcond=None)
    offset[:, : basis.shape[1]] = coef.T
    return offset


def image_metrics(fit: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """PSNR (dB, data range 1) and SSIM of fit against reference, both (H, W, C); the fit is
    clipped to [0, 1] first, as in the PNG. An exact match has PSNR None (infinite)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    fit = np.clip(np.asarray(fit, dtype=np.float64), 0.0, 1.0)
    ref = np.asarray(reference, dtype=np.float64)
    mse = float(np.mean((fit - ref) ** 2))
    psnr = float(peak_signal_noise_ratio(ref, fit, data_range=1.0)) if mse > 0 else None
    side = min(ref.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    ssim = None
    if win >= 3:
        if ref.shape[2] == 1:
            ssim = float(structural_similarity(ref[..., 0], fit[..., 0], data_range=1.0, win_size=win))
        else:
            ssim = float(structural_similarity(ref, fit, data_range=1.0, win_size=win, channel_axis=-1))
    return {"psnr": psnr, "ssim": ssim, "mse": mse}


def psnr_of_mse(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-20))
