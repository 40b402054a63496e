"""Configuration of image fitting: the network, what it is fitted to, and how it is trained.

Field docstrings are the ``--help`` text of ``sdfrecon fit-image`` and ``sdfrecon blend``.
The defaults are the CPU recipe measured in docs/images.md (``scripts/bench/images.py``
re-measures it); :data:`PRESETS` also holds the SIREN paper's recipe. No torch import here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from sdfrecon.config import TrainConfig

Activation = Literal["sine", "relu", "relu-pe", "tanh"]
Target = Literal["pixels", "gradient", "laplacian"]


@dataclass(frozen=True)
class ImageModelConfig:
    activation: Activation = "sine"
    """Hidden activation: sine (a SIREN), relu, relu-pe (ReLU after a positional encoding of
    the coordinates, as in NeRF) or tanh."""
    hidden_features: int = 192
    """Width of each hidden layer."""
    hidden_layers: int = 3
    """Number of hidden layers after the first layer (the output layer is linear)."""
    first_omega_0: float = 30.0
    """sine: omega_0 of the first layer, sin(omega_0 (W x + b)); sets the frequencies the
    network starts with (x spans [-1, 1] across the image)."""
    hidden_omega_0: float = 30.0
    """sine: omega_0 of the hidden layers."""
    pe_frequencies: int | None = None
    """relu-pe: number of octaves L of the encoding sin/cos(2^k pi x), k < L; None: the
    highest octave below the image's Nyquist rate, floor(log2(min(W, H) / 4))."""


@dataclass(frozen=True)
class ImageFitConfig:
    target: Target = "pixels"
    """What the network is fitted to: the pixel values, their gradient (Sobel) or their
    Laplacian, both in coordinate units so that the network's own derivatives match them."""
    batch_size: int | None = 8192
    """Pixels per step, visited in a fresh random order each epoch; None: every pixel every step."""
    pixel_jitter: float = 1.0
    """pixels: move each sample by a random offset within +-jitter/2 of a pixel every step, so
    that the function is fitted over the pixel's area (1: the whole pixel), not only at its
    centre, and renders at other sizes agree with the fit; 0 fits the centres only (closer at
    the centres, farther between them: docs/images.md, re-measured by fit-image with
    --pixel-jitter 0 and a 2x render-image box-downsampled)."""


@dataclass(frozen=True)
class ImageTrainConfig(TrainConfig):
    steps: int = 2000
    """Optimisation steps (training also stops at --time-budget, whichever comes first)."""
    lr: float | None = None
    """Peak learning rate of Adam; None: 1e-3 for a pixel fit, 1e-4 for a gradient or
    Laplacian fit (at 1e-3 derivative fits stall far lower: docs/images.md; re-measure with
    fit-image --target gradient --lr 1e-3)."""
    lr_final_ratio: float = 0.01
    """Final learning rate as a fraction of --lr (cosine schedule)."""
    warmup_steps: int = 50
    """Linear warm-up of the learning rate, in steps."""
    grad_clip: float | None = None
    """Clip the global gradient norm to this value; None disables clipping."""
    checkpoint_every: int = 1000
    """Write the model file every this many steps (and at the end)."""


@dataclass(frozen=True)
class ImageConfig:
    """Everything that decides an image fit; saved in the model file."""

    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    fit: ImageFitConfig = field(default_factory=ImageFitConfig)
    train: ImageTrainConfig = field(default_factory=ImageTrainConfig)


DEFAULT_LR: dict[str, float] = {"pixels": 1e-3, "gradient": 1e-4, "laplacian": 1e-4}
"""The learning rate of each target when --lr is not given."""


def resolve_lr(config: ImageConfig) -> ImageConfig:
    """The config with its learning rate chosen for its target when it is None."""
    if config.train.lr is not None:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, lr=DEFAULT_LR[config.fit.target]))


PAPER = ImageConfig(
    model=ImageModelConfig(hidden_features=256, hidden_layers=3, first_omega_0=30.0, hidden_omega_0=30.0),
    fit=ImageFitConfig(batch_size=None, pixel_jitter=0.0),
    train=ImageTrainConfig(steps=10_000, lr=1e-4, lr_schedule="constant", warmup_steps=0, grad_clip=None),
)
"""The SIREN paper's image recipe (Sitzmann et al. 2020, Sec. 4.1 and their code): 256 wide,
3 hidden layers, omega_0 = 30, every pixel every step, Adam at a constant 1e-4."""

PRESETS: dict[str, ImageConfig] = {"fast": ImageConfig(), "paper": PAPER}
"""Named starting points of ``fit-image --preset``: 'fast' (the defaults) and 'paper'. Each is
a whole config: on the command line it is the default of every option (a tyro subcommand,
:mod:`sdfrecon.cli.image`), so an option given there wins over it at any value."""

PRESET_HELP: dict[str, str] = {
    "fast": "--preset fast (the default): the CPU recipe of docs/images.md, minutes on a CPU.",
    "paper": "--preset paper: the SIREN paper's recipe: 256 wide, every pixel every step, no "
             "jitter, Adam at a constant 1e-4 for 10000 steps.",
}
"""The --help line of each preset."""


def image_config_from_dict(data: dict[str, Any]) -> ImageConfig:
    """Rebuild an :class:`ImageConfig` from ``dataclasses.asdict`` output (a model file's)."""
    known = {"model": ImageModelConfig, "fit": ImageFitConfig, "train": ImageTrainConfig}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown ImageConfig fields: {sorted(unknown)}")
    return ImageConfig(**{k: known[k](**v) for k, v in data.items()})
