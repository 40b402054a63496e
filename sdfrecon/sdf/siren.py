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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

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
        g <- (g * w_l cos(a_l)) W_l from g = W_out down to the input. When x needs no
        gradient (training), one fused autograd Function computes both and back-propagates a
        loss on them by hand (see :class:`SirenValueAndGradient`); otherwise (a loss that
        differentiates the gradient again, e.g. the divergence) the same pass is composed of
        ordinary autograd operations.
        """
        if not (x.requires_grad and torch.is_grad_enabled()):
            omegas = tuple(layer.omega_0 for layer in self.net)
            params = [p for layer in self.net for p in (layer.linear.weight, layer.linear.bias)]
            return SirenValueAndGradient.apply(x, omegas, self.kernels, *params,
                                               self.out.weight, self.out.bias)
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

    def forward_with_laplacian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y (B,), dy/dx (B, in) and the Laplacian sum_k d2y/dx_k2 (B,) for a scalar output, in
        forward mode: each layer carries its Jacobian J (in, B, n) and Laplacian L (B, n),

            a = w (h W^T + b),  Ja = w J W^T,  La = w L W^T
            h' = sin a,  J' = cos a * Ja,  L' = cos a * La - sin a * sum_k Ja_k^2

        (the first layer's J is the identity and L zero; h, J and L are stacked so that a
        layer is one matrix product). Ordinary autograd operations, so a
        loss on the three back-propagates with one backward pass and no graph of a graph:
        the divergence of the gradient (normal-free training) without autograd's double and
        triple backward.
        """
        d = x.shape[-1]
        first, *rest = self.net
        w, weight = first.omega_0, first.linear.weight
        a = w * first.linear(x)
        ja = (w * weight.t()).unsqueeze(1)  # (d, 1, n): dx/dx = I, the same for every point
        sin, cos = torch.sin(a), torch.cos(a)
        # the stack [h, J_1 .. J_d, L] (d + 2, B, n): one matrix product a layer for all of it
        stack = torch.cat([sin[None], cos * ja, (-sin * (ja * ja).sum(0))[None]])
        for layer in rest:
            w, lin = layer.omega_0, layer.linear
            pre = torch.matmul(stack, lin.weight.t()).mul(w)  # (d + 2, B, n)
            a = pre[0] + w * lin.bias
            ja = pre[1 : d + 1]
            sin, cos = torch.sin(a), torch.cos(a)
            stack = torch.cat([sin[None], cos * ja, (cos * pre[d + 1] - sin * (ja * ja).sum(0))[None]])
        out = torch.matmul(stack, self.out.weight.t()).squeeze(-1)  # (d + 2, B)
        return out[0] + self.out.bias, out[1 : d + 1].t(), out[d + 1]

    kernels: SirenKernels | None = None
    """The fused step's forward and backward; None: the eager ones."""

    def use_compiled_kernels(self) -> None:
        """Use torch.compile'd kernels for the fused value-and-gradient step (inductor fuses
        the elementwise work between the matrix products; the first step pays the compile)."""
        self.kernels = compiled_kernels()


class SdfSiren(Siren):
    """A SIREN R^3 -> R returning the signed distance as shape (B,).

    With ``config.sphere_prior = r`` it returns SIREN(x) + |x|_e - |r|_e, |v|_e =
    sqrt(|v|^2 + e^2) (e = ``sphere_prior_smoothing``): the SDF of a sphere, smoothed at its
    centre, plus a learned residual. The SIREN's initial output is small (about 0.03), so the zero
    set starts as one sphere and the far field as a true distance.
    """

    def __init__(self, config: SirenConfig):
        super().__init__(3, 1, config)
        self.sphere_prior = config.sphere_prior
        self.smoothing = config.sphere_prior_smoothing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = super().forward(x).squeeze(-1)
        if self.sphere_prior is not None:
            f = f + self.prior(x)[0]
        return f

    def prior(self, x: torch.Tensor, order: int = 0) -> tuple[torch.Tensor, ...]:
        """The prior at x (B, 3) and its derivatives up to ``order``: (value (B,),), then
        gradient (B, 3), then Laplacian (B,); only what is asked is computed (the grid
        evaluation and the training step with normals need no Laplacian)."""
        e2 = self.smoothing**2
        q = torch.sqrt((x * x).sum(-1) + max(e2, 1e-12))
        out: tuple[torch.Tensor, ...] = (q - math.sqrt(self.sphere_prior**2 + e2),)
        if order >= 1:
            out += (x / q.unsqueeze(-1),)
        if order >= 2:
            out += ((2.0 * q * q + e2) / q**3,)
        return out

    def value_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x) (B,) and grad f(x) (B, 3) without autograd's double backward."""
        f, grad = self.forward_with_input_gradient(x)
        if self.sphere_prior is not None:
            value, slope = self.prior(x, order=1)
            f, grad = f + value, grad + slope
        return f, grad

    def value_gradient_laplacian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f (B,), grad f (B, 3) and its divergence, the Laplacian of f (B,), by
        :meth:`Siren.forward_with_laplacian` (x needs no gradient)."""
        f, grad, lap = self.forward_with_laplacian(x)
        if self.sphere_prior is not None:
            value, slope, curvature = self.prior(x, order=2)
            f, grad, lap = f + value, grad + slope, lap + curvature
        return f, grad, lap


# The fused value-and-gradient step. Notation for sine layer l = 1..K (K = hidden_layers + 1):
#   a_l = h_{l-1} V_l^T + c_l     with V_l = w_l W_l, c_l = w_l b_l (omega folded in)
#   h_l = sin(a_l), C_l = cos(a_l), y = h_K u^T + b_out
# the input gradient runs back from g_K = u (broadcast):
#   e_l = g_l * C_l,  g_{l-1} = e_l V_l,  grad y = g_0
# Given dL/dy and dL/dg_0, the loss back-propagates through the gradient pass upwards
# (l = 1..K: dL/dV_l += e_l^T dL/dg_{l-1}, dL/de_l = dL/dg_{l-1} V_l^T, dL/dg_l = dL/de_l * C_l)
# and then through the value pass downwards (l = K..1:
#   dL/da_l = dL/dh_l * C_l - dL/de_l * g_l * h_l   (since dC/da = -sin a = -h),
#   dL/dV_l += dL/da_l^T h_{l-1}, dL/dc_l = sum dL/da_l, dL/dh_{l-1} = dL/da_l V_l).
# That is 6 matrix products per hidden layer, as autograd's double backward, but with no
# graph of a graph and a few fused elementwise passes instead of autograd's dozens.


def sine_forward(
    x: torch.Tensor, params: list[torch.Tensor], omegas: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """x (B, in), params [W_1, b_1, ..., W_K, b_K, W_out (1, n), b_out (1,)] ->
    y (B,), grad y (B, in), and the tensors the backward needs."""
    k = len(omegas)
    vs = [params[2 * i] * omegas[i] for i in range(k)]
    hs, cs, es, gs = [x], [], [], []
    h = x
    for i in range(k):
        a = torch.addmm(params[2 * i + 1] * omegas[i], h, vs[i].t())
        cs.append(torch.cos(a))
        h = torch.sin_(a)
        hs.append(h)
    w_out, b_out = params[2 * k], params[2 * k + 1]
    y = torch.addmm(b_out, h, w_out.t()).squeeze(-1)
    g = w_out.expand(x.shape[0], -1)
    for i in range(k - 1, -1, -1):
        gs.append(g)
        e = g * cs[i]
        es.append(e)
        g = e @ vs[i]
    gs.reverse()
    es.reverse()
    return y, g, [*hs, *cs, *es, *gs, *vs, w_out]


def sine_backward(
    saved: list[torch.Tensor], omegas: tuple[float, ...], y_bar: torch.Tensor, g_bar: torch.Tensor
) -> list[torch.Tensor]:
    """dL/dparams (same order as :func:`sine_forward`'s params) from dL/dy (B,) and
    dL/d(grad y) (B, in)."""
    k = len(omegas)
    hs, cs, es = saved[: k + 1], saved[k + 1 : 2 * k + 1], saved[2 * k + 1 : 3 * k + 1]
    gs, vs, w_out = saved[3 * k + 1 : 4 * k + 1], saved[4 * k + 1 : 5 * k + 1], saved[5 * k + 1]
    v_bars, e_bars = [], []
    gb = g_bar
    for i in range(k):  # back through the gradient pass, upwards
        v_bars.append(es[i].t() @ gb)
        eb = gb @ vs[i].t()
        gb = eb * cs[i]
        e_bars.append(eb)
    yb = y_bar.unsqueeze(-1)
    w_out_bar = torch.addmm(gb.sum(0, keepdim=True), yb.t(), hs[k])
    hb = yb * w_out
    grads: list[torch.Tensor] = [y_bar.sum().reshape(1), w_out_bar]  # reversed below
    for i in range(k - 1, -1, -1):  # back through the value pass, downwards
        ab = hb.mul_(cs[i])
        ab.addcmul_(e_bars[i].mul_(gs[i]), hs[i + 1], value=-1.0)
        grads.append(ab.sum(0).mul_(omegas[i]))
        grads.append(torch.addmm(v_bars[i], ab.t(), hs[i]).mul_(omegas[i]))
        if i > 0:
            hb = ab @ vs[i]
    grads.reverse()
    return grads


@dataclass(frozen=True)
class SirenKernels:
    """The two halves of the fused step (eager, or compiled by :func:`compiled_kernels`)."""

    forward: Callable = sine_forward
    backward: Callable = sine_backward


@functools.lru_cache(maxsize=1)
def compiled_kernels() -> SirenKernels:
    """torch.compile'd :func:`sine_forward` / :func:`sine_backward` (shapes fixed per batch
    size; compiled once per process, and cached on disk by inductor across processes)."""
    return SirenKernels(torch.compile(sine_forward, dynamic=False),
                        torch.compile(sine_backward, dynamic=False))


class SirenValueAndGradient(torch.autograd.Function):
    """(x, omegas, kernels, *params) -> (y (B,), grad_x y (B, in)), back-propagating a loss on
    both to the parameters by the hand-written pass above. x gets no gradient."""

    @staticmethod
    def forward(ctx, x, omegas, kernels, *params):  # type: ignore[override]
        kernels = kernels or SirenKernels()
        y, g, saved = kernels.forward(x.detach(), list(params), omegas)
        ctx.omegas, ctx.kernels = omegas, kernels
        ctx.save_for_backward(*saved)
        return y, g

    @staticmethod
    def backward(ctx, y_bar, g_bar):  # type: ignore[override]
        grads = ctx.kernels.backward(list(ctx.saved_tensors), ctx.omegas,
                                     y_bar.contiguous(), g_bar.contiguous())
        return (None, None, None, *grads)

