"""Training the image hypernetwork with the shared loop of :mod:`sdfrecon.sdf.train`: windows cut
from masked training images, the mean squared error of the completed patch (every pixel,
in grey levels), a validation PSNR on held-out images, checkpoints that resume exactly.

A model folder holds model.pt (a checkpoint of kind 'hyper': the weights, the optimiser,
the window generator and the config), losses.csv and train.json (a summary).
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
from sdfrecon.image.hyper.config import HyperConfig, hyper_config_from_dict
from sdfrecon.image.hyper.model import HyperSiren, count_parameters
from sdfrecon.sdf.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sdfrecon.sdf.train import TrainState, resolve_device, train

log = logging.getLogger("sdfrecon")

KIND = "hyper"
MODEL_FILE = "model.pt"
LOG_FILE = "losses.csv"
SUMMARY_FILE = "train.json"
VALIDATION_KEEP = 0.1
"""Observed share of the validation windows whose PSNR is logged."""


def psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-20))


@dataclass
class HyperModel:
    """A trained hypernetwork and its config, as read from a model folder."""

    network: HyperSiren
    config: HyperConfig
    step: int = 0

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
        try:
            config = hyper_config_from_dict(ckpt.config)
            network = HyperSiren(config.model)
            network.load_state_dict(ckpt.model)
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise InputError(path, f"is a damaged hyper checkpoint ({type(err).__name__})") from None
        network.eval()
        return cls(network, config, ckpt.step)


def _checkpoint(network: HyperSiren, config: HyperConfig, optimizer: torch.optim.Optimizer,
                state: TrainState, generator: torch.Generator, extra: dict) -> Checkpoint:
    return Checkpoint(kind=KIND, config=to_dict(config), model=network.state_dict(),
                      optimizer=optimizer.state_dict(), step=state.step, elapsed=float(state.elapsed),
                      generator=generator.get_state(), extra={**extra, "history": state.history[-200:]})


def _load_images(sources: list[str]) -> list[np.ndarray]:
    return [hyper_data.load_grey(s) for s in sources]


def evaluate_windows(network: HyperSiren, windows: torch.Tensor, targets: torch.Tensor,
                     chunk: int = 64) -> tuple[float, float]:
    """PSNR (dB) of the network's patches and of the interpolation alone over ``windows``."""
    c, p = network.config.context, network.config.patch
    err, base_err = 0.0, 0.0
    was = network.training
    network.eval()
    with torch.no_grad():
        for start in range(0, len(windows), chunk):
            w, t = windows[start:start + chunk], targets[start:start + chunk]
            out = network(w).clamp(0, 1)
            err += float((out - t).square().sum())
            base_err += float((w[:, 2, c:c + p, c:c + p] - t).square().sum())
    network.train(was)
    n = targets.numel()
    return psnr(err / n), psnr(base_err / n)


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
    folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.train.device)
    state = TrainState()
    ckpt = None
    if resume:
        ckpt = load_checkpoint(folder / MODEL_FILE, KIND)
        saved = hyper_config_from_dict(ckpt.config)  # its network and data; today's training options
        config = HyperConfig(model=saved.model, data=saved.data, train=config.train)
        state = TrainState(step=ckpt.step, elapsed=ckpt.elapsed, history=list(ckpt.extra.get("history", [])))
    elif (folder / LOG_FILE).exists():
        (folder / LOG_FILE).unlink()
    torch.manual_seed(config.train.seed)
    network = HyperSiren(config.model).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.train.lr)
    generator = torch.Generator().manual_seed(config.train.seed)
    if ckpt is not None:
        network.load_state_dict(ckpt.model)
        optimizer.load_state_dict(ckpt.optimizer)
        generator.set_state(ckpt.generator)
    train_sources = list(config.data.train_images) or hyper_data.training_sources()
    validation_sources = list(config.data.validation_images) or hyper_data.validation_sources()
    m = config.model
    log.info("hyper: %d training images, %d validation images; %d parameters", len(train_sources),
             len(validation_sources), count_parameters(network))
    pool = hyper_data.WindowPool(_load_images(train_sources), config.data.shares, m.patch, m.context,
                                 config.train.seed)
    every = config.data.refresh_every
    chunk = max(1, len(pool.items) // 5)
    if every and state.step > every:  # replay the refreshes an uninterrupted run made
        pool.refresh(chunk * ((state.step - 1) // every))
    val_w, val_t = hyper_data.fixed_windows(_load_images(validation_sources), VALIDATION_KEEP,
                                            config.data.validation_windows, m.patch, m.context, seed=12345)
    val_w, val_t = val_w.to(device), val_t.to(device)
    setup_seconds = time.perf_counter() - started
    last_val = [float("nan"), float("nan")]

    def loss_fn() -> dict[str, torch.Tensor]:
        step = state_ref[0].step
        if every and step and step % every == 0:
            pool.refresh(chunk)
        if step % config.train.validate_every == 0 or step + 1 == config.train.steps:
            last_val[:] = evaluate_windows(network, val_w, val_t)
        windows, targets = pool.sample(config.train.batch_size, generator, config.data.augment)
        windows, targets = windows.to(device), targets.to(device)
        mse = (network(windows) - targets).square().mean()
        return {"total": mse, "psnr": torch.tensor(psnr(float(mse.detach()))),
                "val_psnr": torch.tensor(last_val[0]), "val_linear_psnr": torch.tensor(last_val[1])}

    extra = {"train_sources": train_sources, "validation_sources": validation_sources}

    def checkpoint_fn(s: TrainState) -> None:
        save_checkpoint(folder / MODEL_FILE, _checkpoint(network, config, optimizer, s, generator, extra))

    state_ref = [state]
    network.train()
    loop = config.train
    if loop.time_budget is not None:  # the budget covers the setup too: the loop gets the rest
        loop = dataclasses.replace(loop, time_budget=max(1.0, loop.time_budget - setup_seconds))
    state = train(network, optimizer, loss_fn, loop, state, folder / LOG_FILE, checkpoint_fn, "hyper train")
    val, val_linear = evaluate_windows(network, val_w, val_t)
    network.eval()
    summary = {
        "steps": state.step, "train_seconds": round(state.elapsed, 1),
        "setup_seconds": round(setup_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "validation_psnr": round(val, 3), "validation_linear_psnr": round(val_linear, 3),
        "validation": f"{len(val_t)} windows of the validation images, {VALIDATION_KEEP:.0%} observed",
        "parameters": count_parameters(network), **extra, "config": to_dict(config),
    }
    with atomic_write(folder / SUMMARY_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return HyperModel(network, config, state.step), summary
