"""The SIREN layer init (paper Sec. 3.2), the sphere prior, and autograd derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdfrecon.config import SirenConfig
from sdfrecon.sdf.derivatives import gradient, laplacian, value_and_gradient
from sdfrecon.sdf.siren import SdfSiren, SineLayer, Siren, siren_uniform_bound


def test_first_layer_init_is_uniform_one_over_fan_in():
    torch.manual_seed(0)
    layer = SineLayer(3, 4096, omega_0=30.0, is_first=True)
    w = layer.linear.weight.detach().numpy().ravel()
    assert np.abs(w).max() <= 1 / 3
    # U(-c, c) has variance c^2 / 3
    assert w.var() == pytest.approx((1 / 3) ** 2 / 3, rel=0.05)


@pytest.mark.parametrize("omega", [30.0, 10.0])
def test_hidden_layer_init_bound(omega):
    torch.manual_seed(0)
    layer = SineLayer(256, 256, omega_0=omega, is_first=False)
    w = layer.linear.weight.detach().numpy().ravel()
    c = math.sqrt(6 / 256) / omega
    assert siren_uniform_bound(256, omega, False) == pytest.approx(c)
    assert np.abs(w).max() <= c
    assert w.var() == pytest.approx(c**2 / 3, rel=0.05)


def test_activations_keep_their_distribution_with_depth():
    """The init's point: pre-activations omega_0 (W x + b) stay ~N(0, 1)-like at every depth,
    so activations neither vanish nor saturate (paper Sec. 3.2, Thm. 1.8)."""
    torch.manual_seed(0)
    net = Siren(2, 1, SirenConfig(hidden_features=512, hidden_layers=5))
    h = torch.rand(20000, 2) * 2 - 1
    stds = []
    with torch.no_grad():
        for layer in net.net:
            h = layer(h)
            stds.append(float(h.std()))
    # arcsine distribution on [-1, 1] has std 1/sqrt(2)
    assert all(abs(s - 1 / math.sqrt(2)) < 0.08 for s in stds[1:]), stds


def test_gradient_matches_finite_differences():
    torch.manual_seed(1)
    net = SdfSiren(SirenConfig(hidden_features=64, hidden_layers=2)).double()
    x = (torch.rand(50, 3, dtype=torch.float64) * 2 - 1)
    _, g = value_and_gradient(net, x, create_graph=False)
    eps = 1e-6
    fd = torch.stack([(net(x + eps * e) - net(x - eps * e)) / (2 * eps) for e in torch.eye(3, dtype=torch.float64)], dim=-1)
    assert torch.allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_laplacian_of_quadratic():
    x = torch.rand(10, 3, requires_grad=True)
    y = (x**2).sum(-1) + 3 * x[:, 0]
    assert torch.allclose(laplacian(y, x), torch.full((10,), 6.0))
    assert torch.allclose(gradient(y, x)[:, 0], 2 * x[:, 0] + 3)


def test_sphere_prior_starts_near_the_sphere_sdf():
    torch.manual_seed(0)
    net = SdfSiren(SirenConfig(hidden_features=128, hidden_layers=3, sphere_prior=0.5))
    x = torch.rand(5000, 3) * 2 - 1
    exact = x.norm(dim=-1) - 0.5
    with torch.no_grad():
        assert (net(x) - exact).abs().mean() < 0.1


def _sdf_like_loss(f: torch.Tensor, g: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """A loss on both f and grad f shaped like the SDF losses (on-surface, normal, eikonal, off)."""
    cos = torch.nn.functional.cosine_similarity(g, normals, dim=-1)
    return (3e3 * f.abs().mean() + 1e2 * (1 - cos).mean() + 5e1 * (g.norm(dim=-1) - 1).abs().mean()
            + 1e2 * torch.exp(-100 * f.abs()).mean())


def _random_sdf(seed: int, sphere_prior: float | None, dtype: torch.dtype) -> SdfSiren:
    torch.manual_seed(seed)
    cfg = SirenConfig(hidden_features=48, hidden_layers=3, first_omega_0=20.0 + 10 * seed,
                      hidden_omega_0=30.0, sphere_prior=sphere_prior)
    net = SdfSiren(cfg).to(dtype)
    with torch.no_grad():  # random weights beyond the init's range too
        for p in net.parameters():
            p.mul_(1.0 + seed)
    return net


@pytest.mark.parametrize("sphere_prior", [None, 0.4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_written_gradient_and_backward_match_autograd(seed, sphere_prior):
    """f, grad f and the parameter gradients of a loss on both, against autograd's double
    backward, to 1e-5 relative (float64, so that rounding does not hide a wrong term)."""
    net = _random_sdf(seed, sphere_prior, torch.float64)
    x = torch.rand(500, 3, dtype=torch.float64) * 2 - 1
    normals = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64), dim=-1)
    f_ref, g_ref = value_and_gradient(net, x, create_graph=True)
    assert type(net.forward_with_input_gradient(x)[0].grad_fn).__name__ == "SirenValueAndGradientBackward"
    f, g = net.value_and_gradient(x)  # x needs no gradient: the fused Function
    assert ((f - f_ref).abs().max() / f_ref.abs().max()).item() < 1e-5
    rel = (g - g_ref).norm(dim=-1) / g_ref.norm(dim=-1).clamp(min=1e-6)
    assert rel.max().item() < 1e-5
    params = list(net.parameters())
    ref = torch.autograd.grad(_sdf_like_loss(f_ref, g_ref, normals), params)
    got = torch.autograd.grad(_sdf_like_loss(f, g, normals), params)
    for (name, _), a, b in zip(net.named_parameters(), ref, got, strict=True):
        assert ((a - b).norm() / a.norm()).item() < 1e-5, name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_written_backward_in_float32_is_as_accurate_as_autograd(seed):
    """In float32 both paths round (omega is folded into the weights here, and
    pre-activations reach ~100): the fused path's error against the float64 truth stays
    within 2x autograd's own float32 error (or 3e-5 relative, a float32 sum's rounding), for
    grad f and for the parameter gradients."""
    net64 = _random_sdf(seed, 0.5, torch.float64)
    net32 = _random_sdf(seed, 0.5, torch.float32)
    x = torch.rand(500, 3, dtype=torch.float64) * 2 - 1
    normals = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64), dim=-1)
    f64, g64 = value_and_gradient(net64, x)
    truth = torch.autograd.grad(_sdf_like_loss(f64, g64, normals), list(net64.parameters()))
    x32, n32 = x.float(), normals.float()
    f_a, g_a = value_and_gradient(net32, x32)
    auto = torch.autograd.grad(_sdf_like_loss(f_a, g_a, n32), list(net32.parameters()))
    f_h, g_h = net32.value_and_gradient(x32)
    hand = torch.autograd.grad(_sdf_like_loss(f_h, g_h, n32), list(net32.parameters()))
    assert (g_h.double() - g64).abs().max() <= 2 * (g_a.double() - g64).abs().max() + 1e-6
    for t, a, h in zip(truth, auto, hand, strict=True):
        assert (h.double() - t).norm() <= max(2 * (a.double() - t).norm(), 3e-5 * t.norm())


def test_gradient_path_with_a_graph_to_x_matches_autograd():
    """When x needs a gradient (the divergence term differentiates grad f again) the pass is
    composed of autograd operations, so second derivatives come out right too."""
    net = _random_sdf(0, 0.5, torch.float64)
    x = (torch.rand(200, 3, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    _, g = net.value_and_gradient(x)
    assert type(g.grad_fn).__name__ != "SirenValueAndGradientBackward"
    _, g_ref = value_and_gradient(net, x)
    div = sum(torch.autograd.grad(g[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(3))
    div_ref = laplacian(net(x), x)
    assert torch.allclose(g, g_ref, rtol=1e-9, atol=1e-9)
    assert torch.allclose(div, div_ref, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("sphere_prior", [None, 0.4])
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_mode_laplacian_matches_autograd(seed, sphere_prior):
    """The forward-mode f, grad f and Laplacian (normal-free training's divergence term), and
    the parameter gradients of a loss on all three, against autograd's double and triple
    backward, to 1e-6 relative in float64."""
    net = _random_sdf(seed, sphere_prior, torch.float64)
    x = torch.rand(300, 3, dtype=torch.float64) * 2 - 1
    xg = x.clone().requires_grad_(True)
    f_ref = net(xg)
    g_ref = gradient(f_ref, xg)
    lap_ref = sum(gradient(g_ref[:, i], xg)[:, i] for i in range(3))
    f, g, lap = net.value_gradient_laplacian(x)
    for got, ref in ((f, f_ref), (g, g_ref), (lap, lap_ref)):
        assert ((got - ref).abs().max() / ref.abs().max()).item() < 1e-6
    params = list(net.parameters())

    def loss(f, g, lap):
        return f.abs().mean() + (g.norm(dim=-1) - 1).abs().mean() + lap.abs().mean()

    ref = torch.autograd.grad(loss(f_ref, g_ref, lap_ref), params)
    got = torch.autograd.grad(loss(f, g, lap), params)
    for (name, _), a, b in zip(net.named_parameters(), ref, got, strict=True):
        assert ((a - b).norm() / a.norm()).item() < 1e-6, name


@pytest.mark.slow
def test_compiled_kernels_match_eager():
    """torch.compile'd forward/backward of the fused step give the eager results (slow: the
    compile takes ~10-30 s on a CPU)."""
    net = _random_sdf(1, 0.5, torch.float32)
    x = torch.rand(256, 3) * 2 - 1
    normals = torch.nn.functional.normalize(torch.randn(256, 3), dim=-1)
    f, g = net.value_and_gradient(x)
    eager = torch.autograd.grad(_sdf_like_loss(f, g, normals), list(net.parameters()))
    net.use_compiled_kernels()
    fc, gc = net.value_and_gradient(x)
    compiled = torch.autograd.grad(_sdf_like_loss(fc, gc, normals), list(net.parameters()))
    assert torch.allclose(fc, f, rtol=1e-4, atol=1e-5) and torch.allclose(gc, g, rtol=1e-4, atol=1e-4)
    for a, b in zip(eager, compiled, strict=True):
        assert ((a - b).norm() / a.norm()).item() < 1e-4
