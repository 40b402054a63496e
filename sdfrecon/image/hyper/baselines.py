"""What the hypernetwork is compared with, on the same images and masks: griddata nearest and
linear interpolation of the observed pixels, the training set's mean image, and a
linear-Gaussian prior (the posterior mean of a Gaussian with the training images' mean and
covariance, given the observed pixels with a little noise)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdfrecon.image.hyper import data as hyper_data

NOISE_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
"""Observation noise variances (grey levels squared) the Gaussian prior picks from."""


def interpolation(image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """griddata of the observed pixels of ``image`` (H, W): 'nearest' or 'linear'."""
    return np.clip(hyper_data.interpolate(image, mask, method), 0, 1)


@dataclass
class GaussianPrior:
    """x ~ N(mean, cov) over the flattened (H, W) image; observations x_o + N(0, noise I).

    The posterior mean is mean + cov[:, o] (cov[o, o] + noise I)^-1 (x_o - mean_o): with the
    training images' covariance (rank below the number of images) the noise also keeps the
    system well conditioned. ``noises`` maps observed-pixel counts to the noise chosen for
    them on held-out training subjects; other counts take that of the nearest (in log).
    """

    mean: np.ndarray
    cov: np.ndarray
    noises: dict[int, float]

    @classmethod
    def fit(cls, images: np.ndarray, noises: dict[int, float]) -> GaussianPrior:
        """From training images (N, H, W) (flip them first to give it the same data)."""
        flat = images.reshape(len(images), -1).astype(np.float64)
        mean = flat.mean(0)
        centred = flat - mean
        return cls(mean, centred.T @ centred / max(1, len(flat) - 1), noises)

    def low_rank(self, components: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean (P,), basis (P, k)) with basis basis^T the covariance's best rank-k part
        (its leading eigenvectors scaled by the square roots of their eigenvalues)."""
        values, vectors = np.linalg.eigh(self.cov)
        top = np.argsort(values)[::-1][:components]
        return self.mean, vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))

    def noise(self, count: int) -> float:
        return self.noises[min(self.noises, key=lambda c: abs(np.log(c) - np.log(max(count, 1))))]

    def complete(self, image: np.ndarray, mask: np.ndarray, noise: float | None = None) -> np.ndarray:
        """The posterior mean (H, W) given the pixels of ``image`` where ``mask`` is True."""
        o = mask.ravel()
        n = int(o.sum())
        k = self.cov[np.ix_(o, o)] + (self.noise(n) if noise is None else noise) * np.eye(n)
        weights = np.linalg.solve(k, image.ravel()[o].astype(np.float64) - self.mean[o])
        out = self.mean + self.cov[:, o] @ weights
        return np.clip(out.reshape(image.shape), 0, 1).astype(np.float32)


def fit_gaussian(images: np.ndarray, subjects: list[str], counts: tuple[int, ...] = (10, 100, 1000),
                 grid: tuple[float, ...] = NOISE_GRID, tuning_images: int = 20, seed: int = 0) -> GaussianPrior:
    """A :class:`GaussianPrior` of the training images (N, H, W) and their left-right flips.
    Its noise for each of ``counts`` is the one of ``grid`` with the least mean squared error
    completing ``tuning_images`` images of one fifth of the training subjects (random masks)
    from a prior of the other subjects: no held-out subject is looked at."""
    train, held = hyper_data.split_by_subject(subjects, 0.2, seed)
    rng = np.random.default_rng(seed)
    held = rng.choice(held, size=min(tuning_images, len(held)), replace=False)
    h, w = images.shape[1:]
    fold = GaussianPrior.fit(with_flips(images[train]), {})
    noises = {}
    for count in counts:
        masks = [(i, hyper_data.random_mask(h, w, count, rng)) for i in held]
        errors = [np.mean([np.mean((fold.complete(images[i], m, noise) - images[i]) ** 2) for i, m in masks])
                  for noise in grid]
        noises[count] = float(grid[int(np.argmin(errors))])
    return GaussianPrior.fit(with_flips(images), noises)


def with_flips(images: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (2N, H, W): the images and their left-right mirrors."""
    return np.concatenate([images, images[:, :, ::-1]])
