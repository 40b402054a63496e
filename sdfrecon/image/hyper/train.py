"""Training the image hypernetwork with the shared loop of :mod:`sdfrecon.sdf.train`: every
step, a batch of training images (flipped at random) each with a new random mask of
min_observed..max_observed pixels (log-uniform count); the loss is the mean squared error of
the generated SIREN at every pixel. The validation PSNR at 10, 100 and 1000 observed pixels
of the held-out subjects is logged (never used to pick a model).

A model folder holds model.pt (a checkpoint of kind 'hyper': the weights, the optimiser,
the generator, the config, the split and the format version), losses.csv and train.json.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdfrecon.config import to_dict
from sdfrecon.errors import InputError
from sdfrecon.image.hyper import data as hyper_data
from sdfrecon.image.hyper.config import (
    FORMAT_VERSION,
    HyperConfig,
    HyperDataConfig,
    hyper_config_from_dict,
)
from sdfrecon.image.hyper.model import HyperSiren, count_parameters
from sdfrecon.sdf.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sdfrecon.sdf.train import TrainState, resolve_device, train

log = logging.getLogger("sdfrecon")

KIND = "hyper"
MODEL_FILE = "model.pt"
LOG_FILE = "losses.csv"
SUMMARY_FILE = "train.json"
VALIDATION_COUNTS = (10, 100, 1000)
"""Observed pixels of the validation masks whose PSNR is logged."""


def psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-20))


@dataclass
class HyperModel:
    """A trained hypernetwork, its config and the split it was trained with."""

    network: HyperSiren
    config: HyperConfig
    step: int
    train_files: list[str]
    validation_files: list[str]

    @classmethod
    def load(cls, folder: str | Path) -> HyperModel:
        """The model of a folder written by ``sdfrecon hyper train``; InputError otherwise."""
        folder = Path(folder)
        if not folder.exists():
            raise InputError(folder, "no such model folder")
        if not folder.is_dir():
            raise InputError(folder, "is not a folder (expected the model folder of 'sdfrecon hyper train')")
        path = folder / MODEL_FILE
        if not path.is_file():
            raise InputError(folder, f"is not a hyper model folder (it has no {MODEL_FILE})")
        ckpt = load_checkpoint(path, KIND)
        version = ckpt.extra.get("format_version", 1)
        if version != FORMAT_VERSION:
            raise InputError(path, f"is a hyper model of format {version}; this sdfrecon reads format "
                                   f"{FORMAT_VERSION} (train it again with 'sdfrecon hyper train')")
        try:
            config = hyper_config_from_dict(ckpt.config)
            network = HyperSiren(config.model)
            network.set_prior(ckpt.model["prior_mean"], ckpt.model["prior_basis"])
            network.load_state_dict(ckpt.model)
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise InputError(path, f"is a damaged hyper checkpoint ({type(err).__name__})") from None
        network.eval()
        return cls(network, config, ckpt.step, list(ckpt.extra.get("train_files", [])),
                   list(ckpt.extra.get("validation_files", [])))


def validation_set(images: np.ndarray, counts: tuple[int, ...] = VALIDATION_COUNTS,
                   seed: int = 12345) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """(count, images (N, S, S), masks (N, S, S)) per count: one fixed random mask per image."""
    rng = np.random.default_rng(seed)
    n, s, _ = images.shape
    out = []
    for count in counts:
        masks = np.stack([hyper_data.random_mask(s, s, count, rng) for _ in range(n)])
        out.append((count, torch.from_numpy(images), torch.from_numpy(masks.astype(np.float32))))
    return out


def evaluate(network: HyperSiren, image: torch.Tensor, mask: torch.Tensor, chunk: int = 64) -> float:
    """PSNR (dB) over a set of the completions (observed pixels kept, clipped to [0, 1])."""
    was = network.training
    network.eval()
    err = 0.0
    with torch.no_grad():
        for i in range(0, len(image), chunk):
            x, m = image[i:i + chunk], mask[i:i + chunk]
            out = torch.where(m > 0, x, network(x, m).clamp(0, 1))
            err += float((out - x).square().sum())
    network.train(was)
    return psnr(err / image.numel())


def fold_priors(images: np.ndarray, subjects: list[str], config: HyperConfig
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The priors of the prior channel for training: the training subjects cut into
    ``prior_folds`` folds (seeded by split_seed), and per fold the low-rank Gaussian of the
    images (and their mirrors) of the other folds. Returns each image's fold (N,), the means
    (F, P) and the bases (F, P, k); one fold: the prior of every image."""
    from sdfrecon.image.hyper.baselines import GaussianPrior, with_flips

    names = sorted(set(subjects))
    folds = max(1, min(config.data.prior_folds, len(names)))
    order = np.random.default_rng(config.data.split_seed).permutation(len(names))
    fold_of = {names[j]: k % folds for k, j in enumerate(order)}
    fold = np.array([fold_of[s] for s in subjects])
    means, bases = [], []
    for f in range(folds):
        others = images[fold != f] if folds > 1 else images
        mean, basis = GaussianPrior.fit(with_flips(others), {}).low_rank(config.model.prior_components)
        means.append(mean)
        bases.append(basis)
    return fold, np.stack(means).astype(np.float32), np.stack(bases).astype(np.float32)


def full_prior(images: np.ndarray, components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's own prior: the low-rank Gaussian of every training image and its mirror."""
    from sdfrecon.image.hyper.baselines import GaussianPrior, with_flips

    mean, basis = GaussianPrior.fit(with_flips(images), {}).low_rank(components)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(basis.astype(np.float32))


class Batches:
    """Training batches: images flipped, shifted, zoomed and changed in contrast at random,
    each with a new mask of a log-uniform number of observed pixels; every draw comes from
    ``generator`` (resume is exact)."""

    def __init__(self, images: np.ndarray, config: HyperDataConfig):
        self.images = torch.from_numpy(images)
        self.pixels = images.shape[1] * images.shape[2]
        self.low = math.log(max(1, config.min_observed))
        self.high = math.log(max(config.min_observed, min(config.max_observed, self.pixels)))
        self.flip = config.flip
        self.config = config

    def augment(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, S, S) -> (B, S, S): a random shift and zoom (bilinear, border values carried
        out), then a contrast and brightness change, clipped to [0, 1]."""
        import torch.nn.functional as F

        c, b, s = self.config, len(image), image.shape[1]
        u = torch.rand(b, 5, generator=generator) * 2 - 1
        if c.shift > 0 or c.zoom > 0:
            theta = torch.zeros(b, 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = 1 + c.zoom * u[:, 0]
            theta[:, :, 2] = u[:, 1:3] * 2 * c.shift / s
            grid = F.affine_grid(theta, (b, 1, s, s), align_corners=False)
            image = F.grid_sample(image[:, None], grid, padding_mode="border", align_corners=False)[:, 0]
        if c.contrast > 0:
            scale = (1 + c.contrast * u[:, 3])[:, None, None]
            shift = (c.contrast / 3 * u[:, 4])[:, None, None]
            image = ((image - 0.5) * scale + 0.5 + shift).clamp(0, 1)
        return image

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, S, S) images, (B, S, S) float masks and the images' indices (B,)."""
        n, s = len(self.images), self.images.shape[1]
        index = torch.randint(0, n, (batch,), generator=generator)
        image = self.images[index]
        if self.flip:
            flipped = torch.rand(batch, generator=generator) < 0.5
            image = torch.where(flipped[:, None, None], image.flip(2), image)
        image = self.augment(image, generator)
        u = torch.rand(batch, generator=generator)
        counts = torch.exp(self.low + u * (self.high - self.low)).round().long()
        # each pixel's rank in a random order: the `count` smallest are observed
        ranks = torch.rand(batch, self.pixels, generator=generator).argsort(1).argsort(1)
        mask = (ranks < counts[:, None]).float().view(batch, s, s)
        return image, mask, index


def check_model_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """InputError when ``folder`` cannot take a new model (or, with resume, has none)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is a file; the model folder must be a folder")
    exists = (folder / MODEL_FILE).exists()
    if resume and not exists:
        raise InputError(folder, f"has no {MODEL_FILE} to resume from")
    if exists and not resume and not overwrite:
        raise InputError(folder, f"already holds a model ({MODEL_FILE}); use --resume to continue "
                                 "it or --overwrite to start again")


def train_hyper(config: HyperConfig, folder: Path, resume: bool = False,
                overwrite: bool = False) -> tuple[HyperModel, dict]:
    """Train (or resume) a hypernetwork into ``folder``; returns it and the summary that is
    also written to train.json."""
    from sdfrecon.io import atomic_write

    started = time.perf_counter()
    check_model_folder(folder, resume, overwrite)
    device = resolve_device(config.train.device)
    state = TrainState()
    ckpt = None
    if resume:
        ckpt = load_checkpoint(folder / MODEL_FILE, KIND)
        saved = hyper_config_from_dict(ckpt.config)  # its network and data; today's training options
        config = HyperConfig(model=saved.model, data=saved.data, train=config.train)
        state = TrainState(step=ckpt.step, elapsed=ckpt.elapsed, history=list(ckpt.extra.get("history", [])))
    family = hyper_data.load_family(config.data.images, config.data.size)
    train_idx, val_idx = hyper_data.split_by_subject(family.subjects, config.data.validation_share,
                                                     config.data.split_seed)
    folder.mkdir(parents=True, exist_ok=True)
    if not resume and (folder / LOG_FILE).exists():
        (folder / LOG_FILE).unlink()
    torch.manual_seed(config.train.seed)
    network = HyperSiren(config.model)
    train_images = family.images[train_idx]
    train_subjects = [family.subjects[i] for i in train_idx]
    if config.model.prior_components > 0:
        network.set_prior(*full_prior(train_images, config.model.prior_components))
        fold, fold_means, fold_bases = fold_priors(train_images, train_subjects, config)
        fold = torch.from_numpy(fold).to(device)
        fold_means, fold_bases = torch.from_numpy(fold_means).to(device), torch.from_numpy(fold_bases).to(device)
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.train.lr)
    generator = torch.Generator().manual_seed(config.train.seed)
    if ckpt is not None:
        network.load_state_dict(ckpt.model)
        optimizer.load_state_dict(ckpt.optimizer)
        generator.set_state(ckpt.generator)
    d = config.data
    batches = Batches(train_images, d)
    validation = [(c, x.to(device), m.to(device)) for c, x, m in validation_set(family.images[val_idx])]
    log.info("hyper: %d training images (%d subjects), %d validation images (%d subjects); %d parameters",
             len(train_idx), len({family.subjects[i] for i in train_idx}), len(val_idx),
             len({family.subjects[i] for i in val_idx}), count_parameters(network))
    setup_seconds = time.perf_counter() - started
    last_val = {c: float("nan") for c in VALIDATION_COUNTS}

    def loss_fn() -> dict[str, torch.Tensor]:
        step = state_ref[0].step
        if step % config.train.validate_every == 0:
            last_val.update({c: evaluate(network, x, m) for c, x, m in validation})
        image, mask, index = batches.sample(config.train.batch_size, generator)
        image, mask = image.to(device), mask.to(device)
        prior = None
        if config.model.prior_components > 0:
            f = fold[index.to(device)]
            prior = (fold_means[f], fold_bases[f])
        pixels = batches.pixels
        if 0 < config.train.loss_pixels < pixels:
            idx = torch.randperm(pixels, generator=generator)[:config.train.loss_pixels].to(device)
            mse = (network(image, mask, idx, prior) - image.flatten(1)[:, idx]).square().mean()
        else:
            mse = (network(image, mask, prior=prior) - image).square().mean()
        return {"total": mse, "psnr": torch.tensor(psnr(float(mse.detach()))),
                **{f"val_psnr_{c}": torch.tensor(v) for c, v in last_val.items()}}

    extra = {"format_version": FORMAT_VERSION,
             "train_files": [family.files[i] for i in train_idx],
             "validation_files": [family.files[i] for i in val_idx]}

    def checkpoint_fn(s: TrainState) -> None:
        save_checkpoint(folder / MODEL_FILE, Checkpoint(
            kind=KIND, config=to_dict(config), model=network.state_dict(), optimizer=optimizer.state_dict(),
            step=s.step, elapsed=float(s.elapsed), generator=generator.get_state(),
            extra={**extra, "history": s.history[-200:]}))

    state_ref = [state]
    network.train()
    state = train(network, optimizer, loss_fn, config.train, state, folder / LOG_FILE, checkpoint_fn,
                  "hyper train")
    final = {c: round(evaluate(network, x, m), 3) for c, x, m in validation}
    network.eval()
    summary = {
        "steps": state.step, "train_seconds": round(state.elapsed, 1),
        "setup_seconds": round(setup_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "validation_psnr": {str(c): v for c, v in final.items()},
        "validation": f"{len(val_idx)} images of held-out subjects, one fixed random mask per count",
        "parameters": count_parameters(network), "train_images": len(train_idx),
        "validation_subjects": sorted({family.subjects[i] for i in val_idx}), "config": to_dict(config),
    }
    with atomic_write(folder / SUMMARY_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    model = HyperModel(network, config, state.step, extra["train_files"], extra["validation_files"])
    return model, summary


def train_options(config: HyperConfig, **changes) -> HyperConfig:
    """``config`` with training options replaced (for scripts and tests)."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))
