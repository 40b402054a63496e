"""Fitting a network to an image, its gradient or its Laplacian with the shared training
loop; the least-squares offset that a derivative fit cannot know; PSNR and SSIM; rendering
at any size and over any range; Poisson blending of two images.

A fit from the gradient determines the image up to a constant, one from the Laplacian up to
a harmonic function, of which we fit the constant and linear part: these are found by least
squares against the reference image after training and stored with the model (``offset``),
so that rendering adds them back.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sdfrecon.config import to_dict
from sdfrecon.errors import InputError
from sdfrecon.image import data
from sdfrecon.image.config import ImageConfig, Target, image_config_from_dict, resolve_lr
from sdfrecon.image.metrics import OFFSET_DEGREE, fit_offset, offset_field, psnr_of_mse
from sdfrecon.image.models import build_model, has_second_derivative, resolve_model_config
from sdfrecon.sdf.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sdfrecon.sdf.derivatives import divergence, gradient, laplacian
from sdfrecon.sdf.siren import Siren
from sdfrecon.sdf.train import TrainState, resolve_device, train

log = logging.getLogger("sdfrecon")

VALUE_CHUNK = 16384
"""Pixels per network call when evaluating values without autograd (:func:`predict`,
:func:`render`, the whole-image PSNR during training): the peak then holds a few (chunk,
width) activations whatever the image size, and small chunks stay in cache (compare the
time of ``sdfrecon render-image MODEL --size 512x512`` with another value here)."""
DERIVATIVE_CHUNK = 4096
"""Pixels per autograd pass of :func:`render_derivatives`: the graph of a Laplacian grows
with the chunk, not with the image, and smaller chunks are no slower. Re-measure the peak
with ``/usr/bin/time -f %M sdfrecon fit-image -o out/x --size 512x512 --steps 50``."""


@dataclass
class FieldTarget:
    """What a network is fitted to at the pixel centres of an H x W image.

    values: (N, C) pixels, (N, C, 2) gradient or (N, C) Laplacian, in coordinate units;
    reference: the (H, W, C) image that PSNR and the offset are measured against.
    """

    kind: Target
    values: np.ndarray
    reference: np.ndarray

    @property
    def height(self) -> int:
        return self.reference.shape[0]

    @property
    def width(self) -> int:
        return self.reference.shape[1]

    @property
    def channels(self) -> int:
        return self.reference.shape[2]


def image_target(image: np.ndarray, kind: Target) -> FieldTarget:
    """The target of fitting ``image`` (H, W, C) from its pixels, gradient or Laplacian."""
    h, w, c = image.shape
    if kind == "pixels":
        values = image.reshape(h * w, c)
    elif kind == "gradient":
        values = data.sobel_gradient(image).reshape(h * w, c, 2)
    elif kind == "laplacian":
        values = data.laplacian(image).reshape(h * w, c)
    else:
        raise ValueError(f"unknown target {kind!r}")
    return FieldTarget(kind, values, image)


@dataclass
class ImageModel:
    """A fitted image: network (x, y) -> C channels plus the fitted offset, per channel
    a + b x + c y (``offset`` (C, 3); zero for a pixel fit)."""

    network: nn.Module
    config: ImageConfig
    height: int
    width: int
    channels: int
    offset: np.ndarray
    source: str | None = None

    def to_checkpoint(self, optimizer: torch.optim.Optimizer | None = None,
                      state: TrainState | None = None, generator: torch.Generator | None = None) -> Checkpoint:
        state = state or TrainState()
        return Checkpoint(
            kind="image", config=to_dict(self.config), model=self.network.state_dict(),
            optimizer=optimizer.state_dict() if optimizer is not None else {},
            step=state.step, elapsed=float(state.elapsed),
            generator=generator.get_state() if generator is not None else torch.zeros(0, dtype=torch.uint8),
            extra={"height": self.height, "width": self.width, "channels": self.channels,
                   "offset": self.offset.tolist(), "source": self.source,
                   "target": self.config.fit.target},
        )

    @classmethod
    def load(cls, path: str | Path) -> ImageModel:
        """The model of an image checkpoint (``sdfrecon fit-image``'s model.pt)."""
        ckpt = load_checkpoint(path, "image")
        try:
            config = image_config_from_dict(ckpt.config)
            extra = ckpt.extra
            channels = int(extra["channels"])
            network = build_model(config.model, channels)
            network.load_state_dict(ckpt.model)
            offset = np.asarray(extra["offset"], dtype=np.float64).reshape(channels, 3)
            model = cls(network, config, int(extra["height"]), int(extra["width"]), channels,
                        offset, extra.get("source"))
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise InputError(path, f"is a damaged image checkpoint ({type(err).__name__}: {err})") from None
        network.eval()
        return model

    def evaluate(self, coords: np.ndarray, device: torch.device | None = None,
                 chunk: int = VALUE_CHUNK) -> np.ndarray:
        """The fitted function (offset included) at coords (N, 2) -> (N, C) float32, unclipped."""
        raw = predict(self.network, coords, device, chunk)
        return (raw + offset_field(coords, self.offset)).astype(np.float32)


def _device_of(network: nn.Module) -> torch.device:
    param = next(network.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def predict(network: nn.Module, coords: np.ndarray, device: torch.device | None = None,
            chunk: int = VALUE_CHUNK) -> np.ndarray:
    """network(coords) for coords (N, 2), ``chunk`` pixels a call without autograd -> (N, C)
    float64, written into one preallocated array (no list of chunks to concatenate)."""
    device = device or _device_of(network)
    out: np.ndarray | None = None
    with torch.no_grad():
        for start in range(0, len(coords), chunk):
            x = torch.as_tensor(coords[start:start + chunk], dtype=torch.float32, device=device)
            y = network(x).cpu().numpy()
            if out is None:
                out = np.empty((len(coords), y.shape[1]))
            out[start:start + len(y)] = y
    return out if out is not None else np.zeros((0, 1))


def _derivatives(network: nn.Module, x: torch.Tensor, kind: Target, analytic: bool = True) -> torch.Tensor:
    """The network's values (B, C), gradients (B, C, 2) or Laplacians (B, C) at x (B, 2),
    with the graph kept for the parameter update. analytic: a grey SIREN's gradient by its
    hand-written reverse pass (one backward in training instead of a double backward)."""
    if kind == "pixels":
        return network(x)
    if analytic and kind == "gradient" and isinstance(network, Siren) and network.out.out_features == 1:
        return network.forward_with_input_gradient(x)[1][:, None, :]
    x = x.detach().requires_grad_(True)
    y = network(x)
    if kind == "gradient":
        return torch.stack([gradient(y[:, c], x) for c in range(y.shape[1])], dim=1)
    return torch.stack([laplacian(y[:, c], x) for c in range(y.shape[1])], dim=1)


class _Batches:
    """Index batches that visit every pixel once per epoch in a fresh random order."""

    def __init__(self, n: int, batch_size: int | None, generator: torch.Generator, device: torch.device):
        self.n, self.generator, self.device = n, generator, device
        self.size = n if batch_size is None else max(1, min(int(batch_size), n))
        self.order: torch.Tensor | None = None
        self.cursor = n

    def next(self) -> torch.Tensor | None:
        """Indices (B,), or None when every step uses every pixel."""
        if self.size >= self.n:
            return None
        if self.cursor + self.size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            self.order = self.order.to(self.device)
            self.cursor = 0
        idx = self.order[self.cursor:self.cursor + self.size]
        self.cursor += self.size
        return idx


def fit_field(
    target: FieldTarget,
    config: ImageConfig,
    device: torch.device | None = None,
    log_path: Path | None = None,
    model_path: Path | None = None,
    source: str | None = None,
    description: str = "fit image",
) -> tuple[ImageModel, TrainState]:
    """Train ``config.model`` on ``target`` with the shared loop; returns the model (offset
    fitted) and the training state (its history has 'loss' and 'psnr' every log_every steps).

    The loss is the mean squared error of the pixels, or of the gradient or Laplacian divided
    by the target's mean square (a relative error, so that one learning rate suits all).
    The logged 'psnr' is of the batch for a pixel fit, and of the whole image after the
    offset fit for the others. model_path, when given, gets the model every
    checkpoint_every steps and at the end.
    """
    kind = target.kind
    if kind != config.fit.target:
        config = dataclasses.replace(config, fit=dataclasses.replace(config.fit, target=kind))
    if kind == "laplacian" and not has_second_derivative(config.model.activation):
        raise InputError("--activation", f"{config.model.activation} networks have a zero Laplacian; "
                                          "the laplacian target needs sine, tanh or relu-pe")
    device = device or resolve_device(config.train.device)
    h, w, c = target.reference.shape
    config = resolve_lr(dataclasses.replace(config, model=resolve_model_config(config.model, h, w)))
    torch.manual_seed(config.train.seed)
    network = build_model(config.model, c).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.train.lr)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(config.train.seed)

    coords_np = data.pixel_coordinates(h, w)
    reference_flat = target.reference.reshape(h * w, c).astype(np.float64)
    coords = torch.as_tensor(coords_np, device=device)
    values = torch.as_tensor(target.values, dtype=torch.float32, device=device)
    scale = 1.0 if kind == "pixels" else float(values.square().mean().clamp_min(1e-12))
    batches = _Batches(h * w, config.fit.batch_size, generator, device)
    degree = OFFSET_DEGREE[kind]
    model = ImageModel(network, config, h, w, c, np.zeros((c, 3)), source)
    analytic = config.train.gradient == "analytic"
    calls = [0]
    last_psnr = [float("nan")]

    def full_psnr() -> float:
        was_training = network.training
        network.eval()
        pred = predict(network, coords_np, device)
        network.train(was_training)
        offset = fit_offset(pred, reference_flat, coords_np, degree)
        fitted = np.clip(pred + offset_field(coords_np, offset), 0, 1)
        return psnr_of_mse(float(np.mean((fitted - reference_flat) ** 2)))

    pixel = torch.tensor([2.0 / w, 2.0 / h], device=device)  # a pixel's size in coordinates
    jitter = config.fit.pixel_jitter if kind == "pixels" else 0.0

    def loss_fn() -> dict[str, torch.Tensor]:
        idx = batches.next()
        x, y = (coords, values) if idx is None else (coords[idx], values[idx])
        if jitter > 0:
            offsets = torch.rand(x.shape, generator=generator).to(device) - 0.5
            x = x + offsets * jitter * pixel
        err = (_derivatives(network, x, kind, analytic) - y).square().mean()
        loss = err / scale
        calls[0] += 1
        logged = calls[0] % config.train.log_every == 0 or calls[0] == config.train.steps
        if kind == "pixels":
            psnr = psnr_of_mse(float(err.detach()))
        else:
            if logged:
                last_psnr[0] = full_psnr()
            psnr = last_psnr[0]
        return {"total": loss, "psnr": torch.tensor(psnr)}

    def checkpoint_fn(state: TrainState) -> None:
        if model_path is not None:
            model.offset = fit_offset(predict(network, coords_np, device), reference_flat, coords_np, degree)
            save_checkpoint(model_path, model.to_checkpoint(optimizer, state, generator))

    state = train(network, optimizer, loss_fn, config.train, TrainState(), log_path,
                  checkpoint_fn if model_path is not None else None, description)
    network.eval()
    if model_path is None:
        model.offset = fit_offset(predict(network, coords_np, device), reference_flat, coords_np, degree)
    return model, state


def fit_image(image: np.ndarray, config: ImageConfig, device: torch.device | None = None,
              log_path: Path | None = None, model_path: Path | None = None,
              source: str | None = None) -> tuple[ImageModel, TrainState]:
    """Fit ``image`` (H, W, C) in [0, 1] from ``config.fit.target``; see :func:`fit_field`."""
    return fit_field(image_target(image, config.fit.target), config, device, log_path, model_path, source)


def render(model: ImageModel, width: int, height: int,
           x_range: tuple[float, float] = (-1.0, 1.0), y_range: tuple[float, float] = (-1.0, 1.0),
           device: torch.device | None = None) -> np.ndarray:
    """The fitted image sampled at the pixel centres of a width x height grid over
    x_range x y_range (the fit's own pixels at its size and the default range) -> float32
    (height, width, C), unclipped. Larger sizes super-resolve; ranges past [-1, 1] extrapolate."""
    coords = data.pixel_coordinates(height, width, x_range, y_range)
    return model.evaluate(coords, device).reshape(height, width, model.channels)


def _mean_gradient_and_laplacian(network: nn.Module, x: torch.Tensor,
                                 second: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient (B, 2) and Laplacian (B,) of the network's channel mean at x (B, 2), detached.

    The Laplacian is not differentiated again, so no third-order graph is built (~35 KB a
    pixel instead of ~150 KB), and everything the graph holds is local here, freed before
    the next chunk starts. second: False for a network without a second derivative (ReLU):
    Laplacian zero.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = network(x).mean(dim=1)
        g = gradient(y, x, create_graph=second)
        lap = divergence(g, x, create_graph=False) if second else torch.zeros_like(y)
    return g.detach(), lap.detach()


def render_derivatives(model: ImageModel, width: int, height: int,
                       x_range: tuple[float, float] = (-1.0, 1.0),
                       y_range: tuple[float, float] = (-1.0, 1.0),
                       device: torch.device | None = None, chunk: int = DERIVATIVE_CHUNK,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Autograd gradient (H, W, 2) and Laplacian (H, W) of the fitted image's channel mean,
    in coordinate units, offset included. A ReLU network's Laplacian is zero.

    ``chunk`` pixels per autograd pass, each detached into the output arrays before the
    next: the peak is one chunk's graph plus the outputs, whatever the image size."""
    network = model.network
    device = device or _device_of(network)
    coords = data.pixel_coordinates(height, width, x_range, y_range)
    second = has_second_derivative(model.config.model.activation)
    grads = np.empty((len(coords), 2))
    laps = np.empty(len(coords))
    for start in range(0, len(coords), chunk):
        x = torch.as_tensor(coords[start:start + chunk], device=device)
        g, lap = _mean_gradient_and_laplacian(network, x, second)
        grads[start:start + len(x)] = g.cpu().numpy()
        laps[start:start + len(x)] = lap.cpu().numpy()
    grads += model.offset[:, 1:].mean(axis=0)
    return (grads.reshape(height, width, 2).astype(np.float32),
            laps.reshape(height, width).astype(np.float32))


def blend_target(a: np.ndarray, b: np.ndarray, weights: tuple[float, float] = (0.5, 0.5),
                 mask: np.ndarray | None = None) -> FieldTarget:
    """Poisson blending: the gradient target m (w_a grad A + w_b grad B) + (1 - m) grad B
    for images a and b (H, W, C) and a mask m (H, W) in [0, 1] (default: ones, the SIREN
    paper's composite w_a grad A + w_b grad B). The reference, which fixes the constant, is
    the same mix of the pixels themselves."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    m = np.ones(a.shape[:2], dtype=np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
    wa, wb = weights
    ga, gb = data.sobel_gradient(a), data.sobel_gradient(b)
    mg = m[..., None, None]
    grad = mg * (wa * ga + wb * gb) + (1 - mg) * gb
    mp = m[..., None]
    reference = np.clip(mp * (wa * a + wb * b) + (1 - mp) * b, 0.0, 1.0).astype(np.float32)
    h, w, c = a.shape
    return FieldTarget("gradient", grad.reshape(h * w, c, 2).astype(np.float32), reference)
