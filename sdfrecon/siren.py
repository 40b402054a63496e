"""The SIREN of Sitzmann et al. 2020, "Implicit Neural Representations with Periodic
Activation Functions": sine layers sin(omega_0 (W x + b)) and their initialisation.

Init (paper, Sec. 3.2 and supplement Sec. 1.5): the first layer draws W ~ U(-1/n, 1/n)
so that omega_0 * W x spans several periods over [-1, 1]; every later layer draws
W ~ U(-sqrt(6/n)/omega_0, sqrt(6/n)/omega_0), which keeps the pre-activations of
omega_0 (W x + b) standard-normal-like and the activations arcsine-distributed at
any depth. n is the layer's fan-in. Biases keep PyTorch's U(-1/sqrt(n), 1/sqrt(n)),
as in the paper's code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sdfrecon.config import SirenConfig


def siren_uniform_bound(fan_in: int, omega_0: float, is_first: bool) -> float:
    """Half-width c of the U(-c, c) weight init of a sine layer."""
    return 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega_0


class SineLayer(nn.Module):
    """x (..., in) -> sin(omega_0 (W x + b)) (..., out)."""

    def __init__(self, in_features: int, out_features: int, omega_0: float, is_first: bool):
        super().__init__()
        self.omega_0 = float(omega_0)
        self.is_first = is_first
        self.linear = nn.Linear(in_features, out_features)
        bound = siren_uniform_bound(in_features, self.omega_0, is_first)
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * self.linear(x))


class Siren(nn.Module):
    """A SIREN R^in -> R^out: one first sine layer, ``hidden_layers`` hidden sine layers
    and a linear output layer (initialised like a hidden layer, so the output is small)."""

    def __init__(self, in_features: int, out_features: int, config: SirenConfig):
        super().__init__()
        width = config.hidden_features
        layers = [SineLayer(in_features, width, config.first_omega_0, is_first=True)]
        layers += [
            SineLayer(width, width, config.hidden_omega_0, is_first=False)
            for _ in range(config.hidden_layers)
        ]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_features)
        bound = siren_uniform_bound(width, config.hidden_omega_0, is_first=False)
        with torch.no_grad():
            self.out.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in) -> (B, out)."""
        return self.out(self.net(x))


class SdfSiren(Siren):
    """A SIREN R^3 -> R returning the signed distance as shape (B,).

    With ``config.sphere_prior = r`` it returns SIREN(x) + |x| - r: the SDF of a sphere
    plus a learned residual. The SIREN's initial output is small (about 0.03), so the zero
    set starts as one sphere and the far field as a true distance.
    """

    def __init__(self, config: SirenConfig):
        super().__init__(3, 1, config)
        self.sphere_prior = config.sphere_prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = super().forward(x).squeeze(-1)
        if self.sphere_prior is not None:
            # sqrt(|x|^2 + eps): |x| with a gradient defined at the origin.
            f = f + torch.sqrt((x * x).sum(-1) + 1e-12) - self.sphere_prior
        return f
