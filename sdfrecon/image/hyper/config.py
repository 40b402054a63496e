"""Configuration of the image hypernetwork (``sdfrecon hyper train``): the generated SIREN,
the encoder that sees a patch's neighbourhood, the training data and the training loop.

Field docstrings are the ``--help`` text. The defaults are the CPU recipe measured in
docs/hyper.md. No torch import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sdfrecon.config import TrainConfig


@dataclass(frozen=True)
class HyperModelConfig:
    patch: int = 32
    """Side of the square patch one generated SIREN covers, in pixels."""
    context: int = 8
    """Pixels of neighbourhood the encoder sees around the patch on every side (the encoder's
    window is patch + 2 context wide)."""
    encoder_width: int = 16
    """Channels of the encoder CNN's first stage (doubled at each of its 3 down-samplings)."""
    latent: int = 256
    """Size of the code the encoder maps a window to (layer-normalised)."""
    siren_hidden: int = 32
    """Width of the generated SIREN's sine layers."""
    siren_layers: int = 2
    """Hidden sine layers of the generated SIREN after its first one (the output is linear)."""
    first_omega_0: float = 30.0
    """omega_0 of the generated SIREN's first layer (the patch spans [-1, 1])."""
    hidden_omega_0: float = 30.0
    """omega_0 of its hidden layers."""
    residual: bool = True
    """Generate the residual over linear interpolation of the observed pixels (scipy griddata)
    instead of the pixels themselves (see docs/hyper.md for the measured difference)."""
    init_spread: float = 0.1
    """At initialisation, the code's share of each generated weight's spread (the rest is a
    SIREN initialisation shared by all patches): small, so every generated SIREN starts in
    the SIREN initialisation's regime."""


@dataclass(frozen=True)
class HyperDataConfig:
    shares: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5)
    """Observed shares of pixels trained on (one random mask per training image and share,
    redrawn every --refresh-every steps)."""
    augment: bool = True
    """Random flips and quarter turns of the training windows."""
    refresh_every: int = 0
    """Draw new observed-pixel masks for a fifth of the (image, share) pairs every this many
    steps (0: keep the first masks; windows are cut at random places, so they still vary)."""
    train_images: tuple[str, ...] = ()
    """Training images (files or skimage:NAME); empty: the default split (Kodak 01-07 without
    04, and scikit-image's natural images but the cameraman)."""
    validation_images: tuple[str, ...] = ()
    """Validation images; empty: kodim08-11 and the cameraman."""
    validation_windows: int = 192
    """Windows of the validation images (10 % observed) whose PSNR is logged."""


@dataclass(frozen=True)
class HyperTrainConfig(TrainConfig):
    steps: int = 3000
    """Optimisation steps (training also stops at --time-budget, whichever comes first)."""
    time_budget: float | None = 660.0
    """Wall-clock limit of the run in seconds, setup (reading the images, interpolating their
    masks) included: the training loop gets what the setup leaves, and its learning-rate
    schedule anneals to that."""
    lr: float = 1e-3
    """Peak learning rate of Adam."""
    batch_size: int = 32
    """Windows per step."""
    warmup_steps: int = 100
    """Linear warm-up of the learning rate, in steps."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; None disables clipping."""
    checkpoint_every: int = 200
    """Write model.pt every this many steps (and at the end)."""
    log_every: int = 10
    """Write a row of the loss log every this many steps."""
    validate_every: int = 100
    """Compute the validation PSNR every this many steps (logged as val_psnr)."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where to train (the default recipe is sized for a CPU)."""


@dataclass(frozen=True)
class HyperConfig:
    """Everything that decides a hypernetwork; saved in model.pt."""

    model: HyperModelConfig = field(default_factory=HyperModelConfig)
    data: HyperDataConfig = field(default_factory=HyperDataConfig)
    train: HyperTrainConfig = field(default_factory=HyperTrainConfig)


def hyper_config_from_dict(data: dict[str, Any]) -> HyperConfig:
    """Rebuild a :class:`HyperConfig` from ``dataclasses.asdict`` output (model.pt's)."""
    known = {"model": HyperModelConfig, "data": HyperDataConfig, "train": HyperTrainConfig}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown HyperConfig fields: {sorted(unknown)}")
    parts = {k: known[k](**v) for k, v in data.items()}
    if "data" in parts:
        parts["data"] = HyperDataConfig(**{**data["data"], **{k: tuple(data["data"][k]) for k in (
            "shares", "train_images", "validation_images") if k in data["data"]}})
    return HyperConfig(**parts)
