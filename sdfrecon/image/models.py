"""Networks that map a pixel coordinate (x, y) to a colour: the SIREN of
:mod:`sdfrecon.sdf.siren` and the baselines it is compared with (ReLU, ReLU after a positional
encoding, tanh), all with the same width and depth."""

from __future__ import annotations

import math

import torch
from torch import nn

from sdfrecon.config import SirenConfig
from sdfrecon.image.config import ImageModelConfig
from sdfrecon.sdf.siren import Siren


def nyquist_octaves(height: int, width: int) -> int:
    """Octaves of the positional encoding for an image: the highest k with sin(2^k pi x)
    sampled at least four times a period by the smaller side's pixels (>= 1)."""
    return max(1, int(math.floor(math.log2(min(height, width) / 4))))


class PositionalEncoding(nn.Module):
    """x (B, D) -> (B, D (1 + 2 L)): x, then sin(2^k pi x) and cos(2^k pi x) for k < L."""

    def __init__(self, octaves: int):
        super().__init__()
        self.register_buffer("scales", math.pi * 2.0 ** torch.arange(octaves, dtype=torch.float32),
                             persistent=False)

    def out_features(self, in_features: int) -> int:
        return in_features * (1 + 2 * len(self.scales))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x[..., None] * self.scales).flatten(-2)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


class MLP(nn.Module):
    """An MLP with ReLU or tanh hidden layers and a linear output, optionally after a
    positional encoding; PyTorch's default init for tanh, He (Kaiming) init for ReLU."""

    def __init__(self, in_features: int, out_features: int, config: ImageModelConfig,
                 encoding: PositionalEncoding | None = None):
        super().__init__()
        act = {"relu": nn.ReLU, "relu-pe": nn.ReLU, "tanh": nn.Tanh}[config.activation]
        self.encoding = encoding
        width = config.hidden_features
        n_in = encoding.out_features(in_features) if encoding is not None else in_features
        layers: list[nn.Module] = []
        for i in range(config.hidden_layers + 1):
            linear = nn.Linear(n_in if i == 0 else width, width)
            if act is nn.ReLU:
                nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            layers += [linear, act()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding is not None:
            x = self.encoding(x)
        return self.out(self.net(x))


def resolve_model_config(config: ImageModelConfig, height: int, width: int) -> ImageModelConfig:
    """The config with its automatic choices made (the encoding's octaves for relu-pe)."""
    import dataclasses

    if config.activation == "relu-pe" and config.pe_frequencies is None:
        return dataclasses.replace(config, pe_frequencies=nyquist_octaves(height, width))
    return config


def build_model(config: ImageModelConfig, out_features: int, in_features: int = 2) -> nn.Module:
    """The network of ``config`` (resolved: pe_frequencies set for relu-pe)."""
    if config.activation == "sine":
        siren = SirenConfig(hidden_features=config.hidden_features, hidden_layers=config.hidden_layers,
                            first_omega_0=config.first_omega_0, hidden_omega_0=config.hidden_omega_0,
                            sphere_prior=None)
        return Siren(in_features, out_features, siren)
    if config.activation == "relu-pe":
        if config.pe_frequencies is None or config.pe_frequencies < 1:
            raise ValueError("relu-pe needs pe_frequencies >= 1 (resolve_model_config sets it)")
        return MLP(in_features, out_features, config, PositionalEncoding(config.pe_frequencies))
    if config.activation in ("relu", "tanh"):
        return MLP(in_features, out_features, config)
    raise ValueError(f"unknown activation {config.activation!r}")


def has_second_derivative(activation: str) -> bool:
    """Whether the network's Laplacian in x can be non-zero (a ReLU MLP is piecewise linear)."""
    return activation != "relu"
