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

    def forward_with_input_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y (B,) and dy/dx (B, in) for a scalar output, without a double backward.

        The gradient is written out as its own reverse pass: with a_l = w_l (W_l h + b_l),
        g <- (g * w_l cos(a_l)) W_l from g = W_out down to the input. The loss on it then
        back-propagates in one ordinary backward, a graph that torch.compile can also take
        (it cannot compile autograd's double backward).
        """
        pre = []
        h = x
        for layer in self.net:
            a = layer.omega_0 * layer.linear(h)
            pre.append(a)
            h = torch.sin(a)
        y = self.out(h).squeeze(-1)
        g = self.out.weight.expand(x.shape[0], -1)
        for layer, a in zip(reversed(self.net), reversed(pre), strict=True):
            g = (g * (layer.omega_0 * torch.cos(a))) @ layer.linear.weight
        return y, g


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
            f = f + _norm(x) - self.sphere_prior
        return f

    def value_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x) (B,) and grad f(x) (B, 3) without autograd's double backward."""
        f, grad = self.forward_with_input_gradient(x)
        if self.sphere_prior is not None:
            r = _norm(x)
            f = f + r - self.sphere_prior
            grad = grad + x / r.unsqueeze(-1)
        return f, grad


def _norm(x: torch.Tensor) -> torch.Tensor:
    """|x| over the last axis, as sqrt(|x|^2 + 1e-12): differentiable at the origin."""
    return torch.sqrt((x * x).sum(-1) + 1e-12)
