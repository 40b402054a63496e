"""The hypernetwork of the SIREN paper (Sitzmann et al. 2020, Sec. 4.4): a CNN encoder over
the masked image and its mask -> a latent code -> one MLP head per SIREN layer -> every
weight and bias of one small SIREN (x, y) -> grey level that is the whole image.

Initialisation (the paper's point about hypernetworks for sine networks): the last linear
layer of each head has a bias drawn from the SIREN initialisation of its layer
(:func:`sdfrecon.sdf.siren.siren_uniform_bound` for the weights, PyTorch's
U(-1/sqrt(n), 1/sqrt(n)) for the biases) and a small weight (the code's share of the spread
is ``init_spread``), so every generated SIREN starts with the SIREN initialisation's
statistics per layer. The bias is learned: the generated weights are an offset from a
shared SIREN that training turns into a mean image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sdfrecon.image import data
from sdfrecon.image.hyper.config import HyperModelConfig
from sdfrecon.sdf.siren import siren_uniform_bound


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
    by the batch -> (B, N)."""
    h = coords.expand(params[0][0].shape[0], *coords.shape)
    for (w, bias), layer in zip(params, layers, strict=True):
        h = torch.baddbmm(bias[:, None, :], h, w.transpose(1, 2))
        if layer.omega_0 is not None:
            h = torch.sin(layer.omega_0 * h)
    return h[..., 0]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of std ``sigma`` pixels, 2 ceil(2 sigma) + 1 taps."""
    r = max(1, math.ceil(2 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, H, W) -> (B, H, W): separable Gaussian blur, zero outside the image."""
    import torch.nn.functional as F

    k = gaussian_kernel(sigma).to(x)
    r = len(k) // 2
    y = F.conv2d(x[:, None], k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(y, k.view(1, 1, -1, 1), padding=(r, 0))[:, 0]


def gaussian_posterior(image: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor,
                       noise: float) -> torch.Tensor:
    """The posterior mean (B, H, W) of x ~ N(mean, basis basis^T) given x at the observed
    pixels plus N(0, noise) noise: mean + basis c with c = (B_o^T B_o + noise I)^-1 B_o^T
    (x_o - mean_o) (Woodbury's form of the pixel-space posterior, a k x k solve per image).
    image and mask (B, H, W); mean (P,) or (B, P) and basis (P, k) or (B, P, k), P = H W:
    a deterministic function of the observed pixels and the mask."""
    b = image.shape[0]
    m = mask.reshape(b, -1, 1)
    centred = (image.reshape(b, -1) - mean).unsqueeze(-1) * m
    observed = basis * m  # (B, P, k): rows of unobserved pixels zeroed
    gram = observed.transpose(1, 2) @ observed
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    coeff = torch.linalg.solve(gram + noise * eye, observed.transpose(1, 2) @ centred)
    return (mean + (basis @ coeff)[..., 0]).view_as(image)


def encoder_input(image: torch.Tensor, mask: torch.Tensor, scales: tuple[float, ...] = (),
                  prior: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W) image and mask -> (B, 2 + 2 len(scales) [+ 1], H, W): the observed values
    centred on mid-grey (0 where unobserved), the mask, per scale sigma a normalised
    convolution (blurred values over blurred mask) and its confidence (the blurred mask): a
    dense view of a few scattered pixels that a small CNN cannot build from them in its first
    layers; and, given ``prior`` (B, H, W), the linear-Gaussian posterior mean of the
    observed pixels (centred on mid-grey)."""
    values = (image - 0.5) * mask
    channels = [values, mask]
    if prior is not None:
        channels.append(prior - 0.5)
    for sigma in scales:
        weight = blur(mask, sigma)
        channels += [blur(values, sigma) / (weight + 1e-3), weight / (weight.amax((1, 2), keepdim=True) + 1e-6)]
    return torch.stack(channels, 1)


class Encoder(nn.Module):
    """(B, C, H, W) -> (B, latent): three stride-2 stages of a 3x3 convolution and ReLU
    (width, 2 width, 4 width channels), a 3x3 convolution at the last stage's resolution,
    an average pool to 4 x 4 (so any image size works) and a linear map."""

    def __init__(self, config: HyperModelConfig):
        super().__init__()
        c = config.encoder_width
        layers: list[nn.Module] = []
        ch_in = 2 + 2 * len(config.encoder_scales) + (config.prior_components > 0)
        for ch in (c, 2 * c, 4 * c):
            layers += [nn.Conv2d(ch_in, ch, 3, stride=2, padding=1), nn.ReLU()]
            ch_in = ch
        layers += [nn.Conv2d(ch_in, ch_in, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(ch_in * 16, config.latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


class HyperSiren(nn.Module):
    """Image and mask (B, H, W) -> the parameters of one SIREN per image."""

    def __init__(self, config: HyperModelConfig):
        super().__init__()
        self.config = config
        self.layers = siren_layers(config)
        self.encoder = Encoder(config)
        self.heads = nn.ModuleList()
        scales = []
        reference = torch.Generator().manual_seed(0)
        for layer in self.layers:
            n_w, n_b = layer.fan_in * layer.fan_out, layer.fan_out
            bounds = torch.cat([torch.full((n_w,), layer.weight_bound), torch.full((n_b,), layer.bias_bound)])
            # Units of the head's output: each sine layer's bounds (so that Adam's steps are
            # relative to each layer's scale); the linear output layer's in grey levels (its
            # weights must grow from the SIREN init's ~0.01 to ~0.1 to draw an image).
            units = bounds if layer.omega_0 is not None else torch.ones_like(bounds)
            # The last bias: a SIREN init U(-c, c); the code's part has std init_spread * c / 3
            # (the hidden ReLU features have a second moment ~1/6).
            last = nn.Linear(config.head_hidden, n_w + n_b)
            with torch.no_grad():
                k = config.init_spread * math.sqrt(2.0 / config.head_hidden)
                last.weight.uniform_(-k, k, generator=reference)
                last.weight.mul_((bounds / units)[:, None])
                last.bias.uniform_(-1.0, 1.0, generator=reference)
                last.bias.mul_(bounds / units)
            self.heads.append(nn.Sequential(nn.Linear(config.latent, config.head_hidden), nn.ReLU(), last))
            scales.append(units)
        for i, s in enumerate(scales):
            self.register_buffer(f"scale{i}", s, persistent=False)
        self.norm = nn.LayerNorm(config.latent)
        self.dropout = nn.Dropout(config.code_dropout)
        # the linear-Gaussian prior of the training images (set_prior; saved with the model)
        self.register_buffer("prior_mean", torch.zeros(0))
        self.register_buffer("prior_basis", torch.zeros(0, config.prior_components))

    def set_prior(self, mean: torch.Tensor, basis: torch.Tensor) -> None:
        """The prior channel's Gaussian: mean (P,) and basis (P, k), covariance basis basis^T."""
        if basis.shape != (mean.shape[0], self.config.prior_components):
            raise ValueError(f"prior basis {tuple(basis.shape)} for {self.config.prior_components} components "
                             f"of {mean.shape[0]} pixels")
        self.prior_mean = mean.to(self.prior_mean)
        self.prior_basis = basis.to(self.prior_basis)

    def prior_channel(self, image: torch.Tensor, mask: torch.Tensor,
                      prior: tuple[torch.Tensor, torch.Tensor] | None = None
                      ) -> torch.Tensor | None:
        """The posterior mean (B, H, W) under ``prior`` (mean, basis; default: the model's
        own), or None when the model has no prior channel."""
        if self.config.prior_components == 0:
            return None
        mean, basis = prior if prior is not None else (self.prior_mean, self.prior_basis)
        if mean.shape[-1] != image.shape[1] * image.shape[2]:
            raise ValueError(f"the model's prior is of {mean.shape[-1]} pixels, the image of "
                             f"{image.shape[1] * image.shape[2]} (set_prior first)")
        return gaussian_posterior(image, mask, mean, basis, self.config.prior_noise)

    def code(self, image: torch.Tensor, mask: torch.Tensor,
             prior: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, H, W) image in [0, 1] and mask (0/1) -> the latent code (B, latent), of unit
        spread; ``prior`` replaces the model's own (training: a prior without the image's subject)."""
        channel = self.prior_channel(image, mask, prior)
        x = encoder_input(image, mask, self.config.encoder_scales, channel)
        return self.dropout(self.norm(self.encoder(x)))

    def generate(self, image: torch.Tensor, mask: torch.Tensor,
                 prior: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The SIREN of each image: [(W (B, out, in), b (B, out)) per layer]."""
        z = self.code(image, mask, prior)
        params = []
        for i, (head, layer) in enumerate(zip(self.heads, self.layers, strict=True)):
            flat = head(z) * getattr(self, f"scale{i}")
            n_w = layer.fan_in * layer.fan_out
            params.append((flat[:, :n_w].view(-1, layer.fan_out, layer.fan_in), flat[:, n_w:]))
        return params

    def render(self, params: list[tuple[torch.Tensor, torch.Tensor]], height: int, width: int) -> torch.Tensor:
        """The generated SIRENs sampled at the pixel centres of a (height, width) grid over
        [-1, 1]^2: (B, height, width), unclipped."""
        coords = torch.from_numpy(data.pixel_coordinates(height, width)).to(params[0][0].device)
        return siren_forward(params, self.layers, coords).view(-1, height, width)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, pixels: torch.Tensor | None = None,
                prior: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, H, W) image and mask -> the completed images (B, H, W), unclipped; or, given
        flat pixel indices (N,), the SIRENs at those pixels only (B, N)."""
        params = self.generate(image, mask, prior)
        if pixels is None:
            return self.render(params, *image.shape[1:])
        coords = torch.from_numpy(data.pixel_coordinates(*image.shape[1:])).to(image.device)
        return siren_forward(params, self.layers, coords[pixels])


def weight_stats(model: HyperSiren, image: torch.Tensor, mask: torch.Tensor) -> list[dict[str, float]]:
    """Per generated layer: the SIREN bound c of its weights and the max |w|, std and mean of
    the weights generated for the batch (for the init test and the docs)."""
    with torch.no_grad():
        params = model.generate(image, mask)
    return [{"bound": layer.weight_bound, "max_abs": float(w.abs().max()), "std": float(w.std()),
             "mean": float(w.mean())} for (w, _), layer in zip(params, model.layers, strict=True)]


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
