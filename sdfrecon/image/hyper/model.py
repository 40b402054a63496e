"""The hypernetwork: a CNN encoder over a window (the patch and its neighbourhood: observed
values, mask, linear interpolation) to a code, and one linear head per SIREN parameter that
turns the code into every weight and bias of a small SIREN over the patch.

Each window is normalised by the mean m and standard deviation s of its observed values, and
the SIREN's output is scaled back: pixel = base + s * SIREN(x, y), base being the linear
interpolation (residual mode) or m. A constant window has s = 0 and so stays exactly
constant, and a contrast change of the input changes the output the same way.

Initialisation: each head's bias is a SIREN initialisation (:func:`sdfrecon.sdf.siren.siren_uniform_bound`
per layer; PyTorch's U(-1/sqrt(n), 1/sqrt(n)) for the biases, as :class:`sdfrecon.sdf.siren.Siren`),
and its weight is small (the code's share of the spread is ``init_spread``), so every
generated SIREN starts as a SIREN initialisation plus a small patch-dependent part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sdfrecon.image import data
from sdfrecon.image.hyper.config import HyperModelConfig
from sdfrecon.sdf.siren import siren_uniform_bound

NORM_EPS = 0.02
"""Added to a window's standard deviation before dividing its inputs by it (grey levels)."""


@dataclass(frozen=True)
class LayerShape:
    """One layer of the generated SIREN: fan-in, fan-out, omega_0 (None: the linear output),
    and the omega_0 its initialisation uses (the output layer is initialised like a hidden one)."""

    fan_in: int
    fan_out: int
    omega_0: float | None
    is_first: bool
    init_omega: float

    @property
    def weight_bound(self) -> float:
        """Half-width c of the SIREN init U(-c, c) of this layer's weights."""
        return siren_uniform_bound(self.fan_in, self.init_omega, self.is_first)

    @property
    def bias_bound(self) -> float:
        """Half-width of PyTorch's bias init U(-1/sqrt(n), 1/sqrt(n)), kept by the SIREN."""
        return 1.0 / math.sqrt(self.fan_in)


def siren_layers(config: HyperModelConfig) -> list[LayerShape]:
    """The generated SIREN's layers, input (x, y) to one output."""
    n, w0, w = config.siren_hidden, config.first_omega_0, config.hidden_omega_0
    layers = [LayerShape(2, n, w0, True, w0)]
    layers += [LayerShape(n, n, w, False, w) for _ in range(config.siren_layers)]
    return [*layers, LayerShape(n, 1, None, False, w)]


def siren_forward(params: list[tuple[torch.Tensor, torch.Tensor]], layers: list[LayerShape],
                  coords: torch.Tensor) -> torch.Tensor:
    """Batched SIREN: params [(W (B, out, in), b (B, out)) per layer], coords (N, 2) shared
    or (B, N, 2) -> (B, N)."""
    b = params[0][0].shape[0]
    h = coords.expand(b, *coords.shape[-2:]) if coords.dim() == 2 else coords
    for (w, bias), layer in zip(params, layers, strict=True):
        h = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))
        if layer.omega_0 is not None:
            h = torch.sin(layer.omega_0 * h)
    return h[..., 0]


class Encoder(nn.Module):
    """(B, 3, S, S) window -> (B, latent): three stride-2 stages of 3x3 convolutions and GELU,
    then a linear map of the flattened features and a LayerNorm (a code of unit spread)."""

    def __init__(self, config: HyperModelConfig):
        super().__init__()
        c = config.encoder_width
        side = config.patch + 2 * config.context
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1), nn.GELU()]
        ch = c
        for _ in range(3):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.GELU(),
                       nn.Conv2d(2 * ch, 2 * ch, 3, padding=1), nn.GELU()]
            ch *= 2
            side = (side + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(ch * side * side, config.latent)
        self.norm = nn.LayerNorm(config.latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(self.conv(x).flatten(1)))


class HyperSiren(nn.Module):
    """Windows (B, 3, S, S) [observed values, mask, interpolation] -> the parameters of one
    SIREN per window, plus the scale and offset that map its output to grey levels."""

    def __init__(self, config: HyperModelConfig):
        super().__init__()
        self.config = config
        self.layers = siren_layers(config)
        self.encoder = Encoder(config)
        self.heads = nn.ModuleList()
        self.bounds: list[float] = []
        reference = torch.Generator().manual_seed(0)
        for layer in self.layers:
            for numel, bound in ((layer.fan_in * layer.fan_out, layer.weight_bound),
                                 (layer.fan_out, layer.bias_bound)):
                # The head works in units of the bound (so Adam's steps are relative to each
                # layer's scale): bias U(-1, 1), the code's part of std init_spread / sqrt 3.
                head = nn.Linear(config.latent, numel)
                with torch.no_grad():
                    k = config.init_spread / math.sqrt(config.latent)
                    head.weight.uniform_(-k, k, generator=reference)
                    head.bias.uniform_(-1.0, 1.0, generator=reference)
                self.heads.append(head)
                self.bounds.append(bound)
        self.register_buffer("coords", torch.from_numpy(data.pixel_coordinates(config.patch, config.patch)),
                             persistent=False)

    def normalise(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> normalised network input, mean (B,), std (B,) of the observed values."""
        v, m, base = windows[:, 0], windows[:, 1], windows[:, 2]
        count = m.sum((1, 2)).clamp_min(1.0)
        mean = (v * m).sum((1, 2)) / count
        std = (((v - mean[:, None, None]) ** 2 * m).sum((1, 2)) / count).sqrt()
        scale = (std + NORM_EPS)[:, None, None]
        inputs = torch.stack([(v - mean[:, None, None]) * m / scale, m,
                              (base - mean[:, None, None]) / scale], 1)
        return inputs, mean, std

    def generate(self, windows: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor,
                                                       torch.Tensor]:
        """SIREN params [(W (B, out, in), b (B, out))], mean (B,) and std (B,) of each window."""
        inputs, mean, std = self.normalise(windows)
        code = self.encoder(inputs)
        params = []
        for i, layer in enumerate(self.layers):
            w = (self.heads[2 * i](code) * self.bounds[2 * i]).view(-1, layer.fan_out, layer.fan_in)
            b = self.heads[2 * i + 1](code) * self.bounds[2 * i + 1]
            params.append((w, b))
        return params, mean, std

    def core(self, windows: torch.Tensor) -> torch.Tensor:
        """The patch's interpolation (residual mode) or its observed mean: (B, P, P)."""
        c, p = self.config.context, self.config.patch
        if self.config.residual:
            return windows[:, 2, c:c + p, c:c + p]
        mean = self.normalise(windows)[1]
        return mean[:, None, None].expand(-1, p, p)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Windows (B, 3, S, S) -> the completed patches (B, P, P), unclipped."""
        params, _, std = self.generate(windows)
        p = self.config.patch
        out = siren_forward(params, self.layers, self.coords).view(-1, p, p)
        return self.core(windows) + std[:, None, None] * out


def initial_weight_stats(model: HyperSiren, windows: torch.Tensor) -> list[dict[str, float]]:
    """Per generated layer: the SIREN bound c, and the max |w|, std and mean of the weights
    generated for ``windows`` (for the init test and the docs)."""
    with torch.no_grad():
        params, _, _ = model.generate(windows)
    stats = []
    for (w, _), layer in zip(params, model.layers, strict=True):
        stats.append({"bound": layer.weight_bound, "max_abs": float(w.abs().max()),
                      "std": float(w.std()), "mean": float(w.mean())})
    return stats


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
